"""The beat's side: ring again the bells the broker may have lost, expire old files, sweep orphan objects."""

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from webapp.jobs import queue
from webapp.jobs.models import ACTIVE, Job, Part, Status, claimable
from webapp.jobs.services import delete_files, publish, remove

log = logging.getLogger(__name__)


def sweep():
    """Ring the doorbell for every claimable job that no waiting bell covers: claimable jobs (QUEUED, or RUNNING
    with their lease run out: their worker died) minus the bells in the queue, since any bell serves any job.
    The bells go to the oldest of those rows, passing over QUEUED rows published in the last REPUBLISH_AFTER
    seconds (a fresh row is left to its own publish). Returns how many were rung."""
    now = timezone.now()
    claimable_jobs = Job.objects.filter(claimable(now))
    try:
        missing = claimable_jobs.count() - queue.length()
    except redis.RedisError as e:  # the broker is down: the next sweep tries again
        log.warning("sweep stopped: %s", e)
        return 0
    stale = now - timedelta(seconds=settings.REPUBLISH_AFTER)
    due = claimable_jobs.filter(Q(status=Status.RUNNING) | Q(published_at=None) | Q(published_at__lte=stale))
    due = due.order_by("created_at")
    return sum(publish(job_id) for job_id in due.values_list("pk", flat=True)[: max(0, missing)])


def expire():
    """Delete inputs and results older than RETENTION_DAYS; the rows stay, marked expired."""
    cutoff = timezone.now() - timedelta(days=settings.RETENTION_DAYS)
    count = 0
    for job in Job.objects.filter(created_at__lt=cutoff, expired_at=None).exclude(status__in=ACTIVE)[:1000]:
        delete_files(job)
        Job.objects.filter(pk=job.pk).update(
            expired_at=timezone.now(),
            input_file="",
            result_file="",
            input_preview="",
            result_preview="",
            thumbnail="",
            partial_preview="",
            tiles="",
            tiles_info={},
            input_bytes=0,
            output_bytes=0,
            tiles_bytes=0,
        )
        count += 1
    return count


SWEPT_FOLDERS = ("inputs", "results", "previews", "parts")  # parts: the outputs of a fanned-out job's parts
TILE_FOLDERS = "tiles"  # one folder of zoom tiles per job (storage_folder), written by the workers


def sweep_storage():
    """Remove input, result and preview objects, and tile folders, that no job names and that are older than
    the lease (a tile folder's age: its first file's).

    Results and previews are the late writes of a worker that was cut off while storing: its clean-up could
    not reach the storage, and by the time its write landed another worker had claimed the job (a claim
    removes only the files its predecessor had named). Inputs are an upload whose row was never made (the web
    process died, or its storage failed, between the write and the commit: seconds, far less than the lease). Every attempt names its files in the row before writing them, so an
    object listed before the names are read and still unnamed belongs to no live attempt; the age (its
    modification time, from the storage) is a margin on top. Works with any storage that lists folders
    (FileSystemStorage, S3). Returns the number of objects removed; a listing failure raises.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)
    stored = [name for folder in SWEPT_FOLDERS for name in _listed(folder)]  # before the names are read
    stored += _tile_folders()
    named = _named_files()
    removed = 0
    for name in stored:
        if name in named:
            continue
        modified = _modified(name)  # asked only of unnamed objects: one HEAD each on S3
        if modified is not None and modified < cutoff:
            remove([name])
            removed += 1
    return removed


def _tile_folders():
    try:
        return [f"{TILE_FOLDERS}/{name}/" for name in default_storage.listdir(TILE_FOLDERS)[0]]
    except FileNotFoundError:
        return []


def _listed(folder):
    try:
        return [f"{folder}/{name}" for name in default_storage.listdir(folder)[1]]
    except FileNotFoundError:  # a disk storage that has never held such a file
        return []


def _named_files():
    names = set()
    rows = Job.objects.values_list(
        "input_file", "result_file", "result_preview", "input_preview", "thumbnail", "tiles", "attempt_files"
    )
    for *files, attempt_files in rows.iterator(chunk_size=2000):
        names.update(name for name in files if name)
        names.update(attempt_files or [])
    running = Job.objects.filter(status__in=ACTIVE).exclude(partial_preview="")  # a finished job's: orphans
    names.update(running.values_list("partial_preview", flat=True))
    parts = Part.objects.filter(job__status__in=ACTIVE).exclude(output="")  # a finished job's are orphans
    names.update(parts.values_list("output", flat=True).iterator(chunk_size=2000))
    return names


def _modified(name):
    """The object's modification time (aware), or None when it is gone meanwhile; a folder's is its first
    file's (an empty folder counts as old)."""
    if name.endswith("/"):
        files = default_storage.listdir(name)[1]
        if not files:
            return timezone.now() - timedelta(days=3650)  # an empty folder left behind: sweep it
        name += files[0]
    try:
        return default_storage.get_modified_time(name)
    except FileNotFoundError:
        return None
    except Exception as e:  # S3 answers a vanished key with a ClientError (404)
        if getattr(e, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            return None
        raise
