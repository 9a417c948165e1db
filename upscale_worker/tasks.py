"""Thin Celery tasks: they take a job id and call a service in webapp."""

from upscale_worker.celery import app


@app.task(name="upscale_worker.tasks.upscale")
def upscale(job_id):
    from webapp.jobs.services import run_job

    return run_job(job_id)


@app.task(name="upscale_worker.tasks.sweep")
def sweep():
    from webapp.jobs.services import sweep

    return sweep()


@app.task(name="upscale_worker.tasks.expire")
def expire():
    from webapp.jobs.services import expire

    return expire()
