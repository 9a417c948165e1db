"""The doorbell: a message on the ``upscale`` queue means only "there is work". The worker that takes one
claims the oldest claimable row itself (``webapp.jobs.services.worker.claim_next``), so the database alone says
which job runs; a bell carries no job id and needs no bookkeeping here.

A lost bell (a flushed broker, a failed publish) costs a wait for the next sweep, which keeps at least as many
bells waiting as there are claimable jobs; a surplus bell costs its worker one query (docs/operations.md,
"The queue and the database row"; the decision and its numbers: docs/development.md).
"""

import logging

from celery import current_app

from webapp import redis_clients

log = logging.getLogger(__name__)
TASK = "webapp.jobs.tasks.upscale"
QUEUE = "upscale"


def broker():
    """A client of the broker's Redis (the same database as Celery's messages)."""
    return redis_clients.broker()


def ring(count=1, **options):
    """Put ``count`` bells on the queue (``options``: Celery's, e.g. soft_time_limit). Returns how many were
    sent; never blocks long nor raises when the broker is down (the sweeper rings again)."""
    sent = 0
    try:
        for _ in range(count):
            current_app.send_task(TASK, queue=QUEUE, retry=False, **options)
            sent += 1
    except Exception as e:  # the broker is down or unreachable
        log.warning("could not ring the doorbell: %s", e)
    return sent


def length():
    """Bells waiting in the queue list (what the sweeper compares with the claimable jobs)."""
    return broker().llen(QUEUE)
