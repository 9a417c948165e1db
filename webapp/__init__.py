"""The Django project. Its Celery app is created here, with the project, so every process that imports any
part of the site (web, worker, beat, tests) publishes through it and never through Celery's default app."""

from webapp.celery import app as celery_app

__all__ = ("celery_app",)
