"""The web side: what the site's forms and the API do to jobs (submit, cancel, retry, delete) and the quotas."""

import os
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from webapp.jobs.models import ACTIVE, Job, Status
from webapp.jobs.services import delete_files, move, publish, storage_name
from webapp.jobs.validation import model_name


def create_job(owner, upload, header, scale, fmt="png", quality=95, keep_metadata=False):
    """Store a validated upload and queue it; the job is published after the transaction commits."""
    ext = "jpg" if header.format == "jpeg" else header.format
    upload.seek(0)
    name = default_storage.save(storage_name("inputs", ext), upload)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                owner=owner,
                original_name=os.path.basename(upload.name or "image")[:255],
                input_format=header.format,
                input_width=header.width,
                input_height=header.height,
                input_bytes=upload.size,
                scale=scale,
                model=model_name(scale),
                format=fmt,
                quality=quality,
                keep_metadata=keep_metadata,
                input_file=name,
            )
            transaction.on_commit(lambda: publish(job.id))
    except BaseException:
        default_storage.delete(name)
        raise
    return job


def cancel(job):
    return move(job.id, ACTIVE, Status.CANCELLED, error="Cancelled.")


def retry(job):
    """Queue a failed or cancelled job again (if its input is still there)."""
    if job.expired_at or not job.input_file:
        return False
    ok = move(job.id, (Status.FAILED, Status.CANCELLED), Status.QUEUED, error="", progress=0, attempts=0,
              started_at=None, finished_at=None, worker="", published_at=None)
    if ok:
        transaction.on_commit(lambda: publish(job.id))
    return ok


def delete(job):
    """Delete a job and its files; a running job is cancelled first so its worker stops."""
    cancel(job)
    job.refresh_from_db()
    delete_files(job)
    job.delete()


def storage_used(user):
    used = Job.objects.filter(owner=user, expired_at=None).aggregate(i=Sum("input_bytes"), o=Sum("output_bytes"))
    return (used["i"] or 0) + (used["o"] or 0)


def megapixels_today(user):
    since = timezone.now() - timedelta(days=1)
    jobs = Job.objects.filter(owner=user, created_at__gte=since).values_list("input_width", "input_height", "scale")
    return sum(w * h * s * s for w, h, s in jobs) / 1e6


def check_quotas(user, header, scale, size):
    """A sentence saying which quota this upload would exceed, or None."""
    if Job.objects.filter(owner=user, status__in=ACTIVE).count() >= settings.MAX_QUEUED_JOBS_PER_USER:
        return f"You already have {settings.MAX_QUEUED_JOBS_PER_USER} jobs waiting; wait for some to finish."
    mp = header.width * header.height * scale * scale / 1e6
    if megapixels_today(user) + mp > settings.MEGAPIXELS_PER_DAY:
        return f"This would exceed your daily limit of {settings.MEGAPIXELS_PER_DAY:g} output megapixels."
    if storage_used(user) + size > settings.USER_STORAGE_MB * 2**20:
        return f"Your storage is full ({settings.USER_STORAGE_MB:g} MB); delete some jobs first."
    return None


class Refused(Exception):
    """An upload refused with a sentence for the user, an HTTP status and a machine-readable code."""

    def __init__(self, message, status=400, code="invalid"):
        super().__init__(message)
        self.status = status
        self.code = code


def submit(user, upload, scale, fmt="png", quality=95, keep_metadata=False):
    """Validate one upload from its header, check rate limits and quotas, store it and queue it."""
    from webapp import ratelimit
    from webapp.jobs.validation import Invalid, validate_upload

    if not ratelimit.allow(f"upload:{user.pk}", settings.UPLOADS_PER_MINUTE):
        raise Refused(f"Too many uploads: the limit is {settings.UPLOADS_PER_MINUTE} a minute.", 429, "rate_limited")
    try:
        header = validate_upload(upload, scale, fmt)
    except Invalid as e:
        raise Refused(str(e), code=e.code) from None
    quota = check_quotas(user, header, scale, upload.size)
    if quota:
        raise Refused(quota, 429, "quota_exceeded")
    return create_job(user, upload, header, scale, fmt, quality, keep_metadata)

