"""Publishing jobs to Celery by task name: the web process never imports the engine."""

import logging

log = logging.getLogger(__name__)
TASK = "webapp.jobs.tasks.upscale"


def publish(job_id, **options):
    """Send the task; never blocks long nor raises when the broker is down (the sweeper retries)."""
    from upscale_worker.celery import app

    try:
        app.send_task(TASK, args=[str(job_id)], queue="upscale", retry=False, **options)
    except Exception as e:  # the broker is down or unreachable
        log.warning("could not publish job %s: %s", job_id, e)
        return False
    return True
