"""The Celery app. Every option is a CELERY_* setting in webapp/settings.py."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("upscale_worker", include=["webapp.jobs.tasks", "webapp.integrations.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


@signals.celeryd_init.connect
def share_the_cores(options=None, **kwargs):
    """Each pool process gets its share of the cores for OpenVINO (read by the engine at compile time)."""
    cores = len(os.sched_getaffinity(0))
    processes = int((options or {}).get("concurrency") or cores)
    os.environ.setdefault("UPSCALE_THREADS", str(max(1, cores // processes)))


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_connections(**kwargs):
    """What Django does around each request: keep a connection for DB_CONN_MAX_AGE, drop a broken one."""
    from django.db import close_old_connections

    close_old_connections()
