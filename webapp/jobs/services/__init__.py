"""Everything that changes a Job, split along who calls it: ``web`` (the site and the API submit, cancel,
retry, delete), ``worker`` (claim, run, store the result) and ``sweeper`` (the beat's re-publishing and
expiry). What they share lives here (file names and deletion in ``files``, the worker process' own facts in
``host``).

Status changes are conditional UPDATEs (``move``), so two processes never both win a transition
and a finished job never runs again.
"""

import logging

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from webapp.jobs import queue
from webapp.jobs.models import FINISHED, Job, Status
from webapp.jobs.services.files import (  # noqa: F401 (shared: the services import them from here)
    delete_folder,
    remove,
    storage_folder,
    storage_name,
)

log = logging.getLogger(__name__)

# Sent inside the transaction of a move to a finished status (job_id, status): receivers write what must
# commit or roll back with it (webhook deliveries), so the jobs app knows nothing of them.
job_finished = Signal()


def move(job_id, sources, target, where=None, reason=None, **fields):
    """The one place where a status changes: from one of ``sources`` to ``target``. True if it did.
    ``reason``: a machine-readable word for a failure (engine, timeout, storage, worker_lost, internal)."""
    fields["status"] = target
    if target in FINISHED:
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("lease_expires_at", None)
        fields.setdefault("eta_at", None)
    with transaction.atomic():
        moved = Job.objects.filter(pk=job_id, status__in=sources, **(where or {})).update(**fields) == 1
        if moved and target in FINISHED:
            job_finished.send(sender=Job, job_id=job_id, status=target)
    if moved:
        changed(job_id, sources, target, reason)
    return moved


def changed(job_id, sources, target, reason):
    """Called once for each status change that happened: the metrics count it here (and whatever else must
    follow a status change belongs beside them)."""
    from webapp import metrics

    if target in FINISHED:
        job = Job.objects.filter(pk=job_id).first()
        if job is not None:
            metrics.job_finished(job, reason)
    elif target == Status.QUEUED and Status.RUNNING in sources:
        metrics.job_handed_back()


def publish(job_id):
    """Note the time, then ring the doorbell for the job; the row stays the truth, so a failed publish is redone
    by the sweeper. The note comes first: the worker the bell wakes claims with SKIP LOCKED, which would pass
    over the row while the note's UPDATE still held its lock (and skip the bell). True when a bell was rung."""
    Job.objects.filter(pk=job_id).update(published_at=timezone.now())
    if queue.ring():
        return True
    Job.objects.filter(pk=job_id).update(published_at=None)  # the next sweep rings for it
    return False


def delete_files(job):
    from webapp.jobs.services.fanout import discard

    discard(job.pk)  # a running job's parts: its coordinator may be gone
    for f in job.files():
        try:
            f.storage.delete(f.name)
        except OSError:
            log.warning("could not delete %s", f.name, exc_info=True)
    if job.tiles:
        try:
            delete_folder(job.tiles)
        except OSError:
            log.warning("could not delete the tiles in %s", job.tiles, exc_info=True)
