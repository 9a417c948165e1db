"""Thin Celery tasks: they take a job id and call a service. Only worker processes import the engine,
inside the services they call."""

from celery import shared_task


@shared_task(name="webapp.jobs.tasks.upscale")
def upscale(*earlier):
    """A doorbell (webapp/jobs/queue.py). ``earlier``: the job id that messages published before the doorbell
    carried, ignored: they ring as any bell does."""
    from webapp.jobs.services.worker import run_job

    return run_job()


@shared_task(name="webapp.jobs.tasks.sweep")
def sweep():
    from webapp.jobs.services.sweeper import sweep

    return sweep()


@shared_task(name="webapp.jobs.tasks.expire")
def expire():
    from webapp.jobs.services.sweeper import expire

    return expire()


@shared_task(name="webapp.jobs.tasks.sweep_storage")
def sweep_storage():
    from webapp.jobs.services.sweeper import sweep_storage

    return sweep_storage()
