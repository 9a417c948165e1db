"""Thin Celery tasks of the webhook sender: queue ``webhooks``, run by its own worker (``-Q webhooks --pool
threads``), apart from the upscale workers."""

from celery import shared_task


@shared_task(name="webapp.integrations.tasks.deliver")
def deliver(delivery_id):
    from webapp.integrations.webhooks import deliver

    return deliver(delivery_id)


@shared_task(name="webapp.integrations.tasks.sweep_webhooks")
def sweep_webhooks():
    from webapp.integrations.webhooks import sweep

    return sweep()
