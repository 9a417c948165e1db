"""The web side: what the site's forms and the API do to jobs (submit, cancel, retry, delete) and the quotas."""

import errno
import logging
import math
import os
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.models import check_network, default_network
from upscale_worker.engine.vocabulary import SCALES
from webapp.jobs.models import ACTIVE, Job, Source, Status
from webapp.jobs.services import delete_files, move, publish, storage_name
from webapp.jobs.services.partial import drop

log = logging.getLogger(__name__)


def create_job(
    owner,
    upload,
    header,
    scale,
    fmt="png",
    quality=95,
    keep_metadata=False,
    source="auto",
    network="edsr",
    target=None,
):
    """Store a validated upload and queue it; the job is published after the transaction commits. The model
    is left to the worker, which records the one that ran. The quotas are checked again with the owner's row
    locked, so concurrent uploads cannot all pass the same last free place (raises Refused, nothing kept)."""
    ext = "jpg" if header.format == "jpeg" else header.format
    name = store_input(upload, storage_name("inputs", ext))
    try:
        with transaction.atomic():
            list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))
            quota = check_quotas(owner, header, scale, upload.size)
            if quota:
                raise quota
            job = Job.objects.create(
                owner=owner,
                original_name=os.path.basename(upload.name or "image")[:255],
                input_format=header.format,
                input_width=header.width,
                input_height=header.height,
                input_bytes=upload.size,
                scale=scale,
                source=source,
                network=network,
                format=fmt,
                quality=quality,
                keep_metadata=keep_metadata,
                input_file=name,
                **(target.as_fields() if target else {}),
            )
            transaction.on_commit(lambda: publish(job.id))
    except BaseException:
        default_storage.delete(name)
        raise
    return job


def store_input(upload, name):
    """Save the upload under ``name`` (unguessable, so never renamed); a failed write removes what it left. A
    full disk or quota is a Refused 507 (insufficient_storage); other storage faults raise on."""
    upload.seek(0)
    try:
        return default_storage.save(name, upload)
    except OSError as e:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not remove the partly written %s", name)  # the storage sweep will
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise Refused(
                "The server's storage is full; try again later.", 507, "insufficient_storage"
            ) from e
        raise


def cancel(job):
    """Cancel a queued job (its bell stays, and rings for the next job or none) or a running one (its worker
    stops between tiles). True if it was active."""
    if not move(job.id, [Status.QUEUED, Status.RUNNING], Status.CANCELLED, error="Cancelled."):
        return False
    drop(
        job.id
    )  # a running job's partial preview, in case its worker is gone (a live one removes its own too)
    return True


def retry(job):
    """Queue a failed or cancelled job again (if its input is still there)."""
    if job.expired_at or not job.input_file:
        return False
    ok = move(
        job.id,
        (Status.FAILED, Status.CANCELLED),
        Status.QUEUED,
        error="",
        progress=0,
        attempts=0,
        started_at=None,
        finished_at=None,
        worker="",
        published_at=None,
    )
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
    used = Job.objects.filter(owner=user, expired_at=None).aggregate(
        i=Sum("input_bytes"), o=Sum("output_bytes"), t=Sum("tiles_bytes")
    )
    return (used["i"] or 0) + (used["o"] or 0) + (used["t"] or 0)


def _jobs_today(user):
    """(created_at, output megapixels) of the user's jobs in the last 24 hours, oldest first."""
    since = timezone.now() - timedelta(days=1)
    jobs = Job.objects.filter(owner=user, created_at__gte=since).order_by("created_at")
    return [
        (at, w * h * s * s / 1e6)
        for at, w, h, s in jobs.values_list("created_at", "input_width", "input_height", "scale")
    ]


def megapixels_today(user):
    return sum(mp for _, mp in _jobs_today(user))


def megapixels_retry_after(jobs, needed):
    """Seconds until enough of ``jobs`` (from _jobs_today) leave the 24-hour window for ``needed`` more
    megapixels to fit; None when they never would (the upload alone exceeds the quota)."""
    excess = sum(mp for _, mp in jobs) + needed - settings.MEGAPIXELS_PER_DAY
    if needed > settings.MEGAPIXELS_PER_DAY:
        return None
    for at, mp in jobs:
        excess -= mp
        if excess <= 0:
            return max(1, math.ceil((at + timedelta(days=1) - timezone.now()).total_seconds()))
    return None


class Refused(Exception):
    """An upload refused with a sentence for the user, an HTTP status and a machine-readable ``code``; quota
    and rate-limit refusals (429) also carry a ``reason`` and, where waiting helps, ``retry_after`` seconds."""

    def __init__(self, message, status=400, code="invalid", reason=None, retry_after=None):
        super().__init__(message)
        self.status, self.code, self.reason, self.retry_after = status, code, reason, retry_after

    def body(self):
        return {"reason": self.reason} if self.reason else {}

    def headers(self):
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


def check_quotas(user, header, scale, size):
    """The Refused this upload would meet for exceeding a quota, or None."""
    if Job.objects.filter(owner=user, status__in=ACTIVE).count() >= settings.MAX_QUEUED_JOBS_PER_USER:
        return Refused(
            f"You already have {settings.MAX_QUEUED_JOBS_PER_USER} jobs waiting; wait for some to finish.",
            429,
            "quota_exceeded",
            "active_jobs",
        )
    mp = header.width * header.height * scale * scale / 1e6
    jobs = _jobs_today(user)
    if sum(used for _, used in jobs) + mp > settings.MEGAPIXELS_PER_DAY:
        return Refused(
            f"This would exceed your daily limit of {settings.MEGAPIXELS_PER_DAY:g} output megapixels.",
            429,
            "quota_exceeded",
            "daily_megapixels",
            megapixels_retry_after(jobs, mp),
        )
    if storage_used(user) + size > settings.USER_STORAGE_MB * 2**20:
        return Refused(
            f"Your storage is full ({settings.USER_STORAGE_MB:g} MB); delete some jobs first.",
            429,
            "quota_exceeded",
            "storage",
        )
    return None


def choose_network(network, scale):
    """The network a job of ``scale`` runs on: ``network``, or None for the operator's UPSCALE_DEFAULT_NETWORK.
    Raises Refused (400, code unsupported_network) for one unknown, left out (UPSCALE_MODELS) or lacking
    ``scale`` (RLFN has no x3): never silently another network."""
    network = network or default_network()
    try:
        check_network(network, scale, settings.MODEL_MANIFEST.parent)
    except EngineError as e:
        raise Refused(str(e), code="unsupported_network") from None
    return network


def submit(
    user,
    upload,
    scale,
    fmt="png",
    quality=95,
    keep_metadata=False,
    source="auto",
    network=None,
    target=None,
):
    """Validate one upload from its header, check rate limits and quotas, store it and queue it. ``network``
    None: the operator's UPSCALE_DEFAULT_NETWORK; one that lacks ``scale`` (RLFN x3) is refused. ``target``
    (upscale_worker.engine.target.Target) instead of ``scale`` (None): the smallest of the network's scales
    that reaches it within the limits runs, and the quotas count its output before the resize."""
    from webapp import ratelimit
    from webapp.jobs.validation import Invalid, validate_upload

    wait = ratelimit.hit(f"upload:{user.pk}", settings.UPLOADS_PER_MINUTE)
    if wait:
        raise Refused(
            f"Too many uploads: the limit is {settings.UPLOADS_PER_MINUTE} a minute.",
            429,
            "rate_limited",
            "rate_limited",
            wait,
        )
    if source not in Source.values:
        raise Refused(f"Unknown source {source!r}; choose one of {', '.join(Source.values)}.")
    if target is not None:
        network = network or default_network()
        header, scale = _validated_target(upload, target, fmt, network)
    else:
        try:
            header = validate_upload(upload, scale, fmt)
        except Invalid as e:
            raise Refused(str(e), code=e.code) from None
        network = choose_network(
            network, scale
        )  # after the scale check, which names the installation's scales
    quota = check_quotas(
        user, header, scale, upload.size
    )  # early, before anything is stored (again under a lock)
    if quota:
        raise quota
    return create_job(user, upload, header, scale, fmt, quality, keep_metadata, source, network, target)


def target_scales(network):
    """The scales ``network`` has installed here, among which a target size chooses (a network without x3 never
    runs x3); all three when the manifest names none (the worker will say). Raises Refused (code
    unsupported_network) for a network unknown, left out or unreadable."""
    from upscale_worker.engine.models import available_scales

    folder = settings.MODEL_MANIFEST.parent
    try:
        check_network(network, None, folder)
        return available_scales(folder, network) or list(SCALES)
    except (EngineError, OSError, ValueError, KeyError) as e:
        raise Refused(str(e), code="unsupported_network") from None


def _validated_target(upload, target, fmt, network):
    """(header, scale) for an upload asking for ``target``: the network checked first (its scales decide),
    then the file and the smallest scale that reaches the target. Raises Refused."""
    from webapp.jobs.validation import Invalid, validate_target_upload

    scales = target_scales(network)
    try:
        return validate_target_upload(upload, target, fmt, scales)
    except Invalid as e:
        raise Refused(str(e), code=e.code) from None
