"""Thin Celery tasks: they take a job id and call a service. Only worker processes import the engine,
inside the services they call."""

from celery import shared_task


@shared_task(name="webapp.jobs.tasks.upscale")
def upscale(job_id):
    from webapp.jobs.services.worker import run_job

    return run_job(job_id)


@shared_task(name="webapp.jobs.tasks.upscale_part")
def upscale_part(job_id, run):
    from webapp.jobs.services.fanout import help_with

    return help_with(job_id, run)


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
