"""The beat's side: re-publish what the broker may have lost, and expire old files."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from webapp.jobs import queue
from webapp.jobs.models import ACTIVE, Job, Status
from webapp.jobs.services import delete_files


def sweep():
    """Re-publish what the broker may have lost: QUEUED rows never picked up, RUNNING rows whose lease
    ran out (their worker died). Returns how many were re-published."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.REPUBLISH_AFTER)
    lost = Job.objects.filter(
        Q(status=Status.QUEUED, published_at=None)
        | Q(status=Status.QUEUED, published_at__lt=stale)
        | Q(status=Status.RUNNING, lease_expires_at__lt=now)
    ).values_list("pk", flat=True)
    count = 0
    for job_id in list(lost[:1000]):
        if queue.publish(job_id):
            Job.objects.filter(pk=job_id).update(published_at=now)
            count += 1
    return count


def expire():
    """Delete inputs and results older than RETENTION_DAYS; the rows stay, marked expired."""
    cutoff = timezone.now() - timedelta(days=settings.RETENTION_DAYS)
    count = 0
    for job in Job.objects.filter(created_at__lt=cutoff, expired_at=None).exclude(status__in=ACTIVE)[:1000]:
        delete_files(job)
        Job.objects.filter(pk=job.pk).update(expired_at=timezone.now(), input_file="", result_file="",
                                             input_preview="", result_preview="", thumbnail="", input_bytes=0,
                                             output_bytes=0)
        count += 1
    return count

