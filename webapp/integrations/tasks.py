"""Thin Celery tasks of the webhook sender: queue ``webhooks``, run by its own worker (``-Q webhooks --pool
threads``), apart from the upscale workers."""

from upscale_worker.celery import app


@app.task(name="webapp.integrations.tasks.deliver")
def deliver(delivery_id):
    from webapp.integrations.webhooks import deliver

    return deliver(delivery_id)


@app.task(name="webapp.integrations.tasks.sweep_webhooks")
def sweep_webhooks():
    from webapp.integrations.webhooks import sweep

    return sweep()
