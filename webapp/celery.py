"""The Celery app (``celery -A webapp``) and its signal handlers. Every option is a CELERY_* setting in
webapp/settings.py; tasks are ``@shared_task`` in the Django apps and bind to this app, the current one."""

import logging
import os
import threading

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp", include=["webapp.jobs.tasks", "webapp.integrations.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


@signals.celeryd_init.connect
def share_the_cores(options=None, **kwargs):
    """Each pool process gets its share of the cores for OpenVINO, unless UPSCALE_THREADS names a number
    (the engine's configuration is built from the setting before each job)."""
    from django.conf import settings

    cores = len(os.sched_getaffinity(0))
    processes = int((options or {}).get("concurrency") or cores)
    if not settings.UPSCALE_THREADS:
        settings.UPSCALE_THREADS = max(1, cores // processes)


@signals.celeryd_init.connect
def retry_broker_commands(conf=None, **kwargs):
    """A worker retries a broker command over a new connection when a network cut broke the old one (see
    webapp/broker.py); web processes fail fast."""
    conf.broker_transport_options = {**conf.broker_transport_options, "retry_commands": True}


@signals.task_prerun.connect
def log_the_job(task=None, args=None, **kwargs):
    """A task names no job until it claims one (webapp.jobs.services.worker.run_job sets it)."""
    from webapp import logs

    logs.job_id.set(None)


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_connections(**kwargs):
    """What Django does around each request: keep a connection for DB_CONN_MAX_AGE, drop a broken one."""
    from django.db import close_old_connections

    close_old_connections()


_pool = []  # the worker's pool, known once it is ready
_stopping = threading.Event()


@signals.worker_ready.connect
def remember_the_pool(sender=None, **kwargs):
    _pool[:] = [sender.pool]
    threading.Thread(target=_heartbeat, args=(sender.hostname,), name="heartbeat", daemon=True).start()


def _heartbeat(name):
    """Refresh this worker's key (TTL three beats) for /metrics' live workers, until the process ends."""
    from django.conf import settings

    from webapp import metrics

    while not _stopping.is_set():
        try:
            metrics.worker_alive(name, ttl=max(1, round(3 * settings.WORKER_HEARTBEAT)))
        except Exception as e:  # Redis is down: the key expires, which is the truth
            logging.getLogger(__name__).warning("heartbeat not written: %s", e)
        _stopping.wait(settings.WORKER_HEARTBEAT)


@signals.worker_shutting_down.connect
def hand_back_running_jobs(sig=None, how=None, **kwargs):
    """On SIGTERM (warm shutdown) the pool children are not signalled: mark their jobs in the database, so each
    stops between tiles and goes back to the queue. Runs in the signal handler, so the query runs in a thread
    with a database connection of its own."""
    import socket

    _stopping.set()
    _forget_heartbeat(kwargs.get("sender"))
    pids = [os.getpid(), *(_pool[0].info.get("processes", []) if _pool else [])]
    workers = [f"{socket.gethostname()}:{pid}" for pid in pids]
    thread = threading.Thread(target=_mark, args=(workers,), name="hand-back")
    thread.start()
    thread.join(10)


def _forget_heartbeat(name):
    from webapp import metrics

    try:
        metrics.worker_gone(name)
    except Exception:
        pass  # it expires anyway


def _mark(workers):
    from django.db import connection

    from webapp.jobs.services.worker import mark_for_hand_back

    try:
        count = mark_for_hand_back(workers)
        if count:
            logging.getLogger(__name__).info("shutting down: %s running job(s) marked for hand-back", count)
    finally:
        connection.close()
