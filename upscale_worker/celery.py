"""The Celery app. Every option is a CELERY_* setting in webapp/settings.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("upscale_worker", include=["upscale_worker.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
