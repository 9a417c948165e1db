"""The worker side: claim a job, run the engine with progress and cancel callbacks that renew the lease,
store the result and its previews, record the outcome. Only worker processes import the engine."""

import io
import logging
import os
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp import logs
from webapp.jobs.models import ACTIVE, Job, Status, claimable
from webapp.jobs.services import fanout, move, publish, remove, storage_folder, storage_name
from webapp.jobs.services.host import _pid_is_dead, engine_config, lease, worker_id
from webapp.jobs.services.partial import Partial, drop

log = logging.getLogger(__name__)


def claim(job_id):
    """Take the job: a QUEUED row, or a RUNNING row whose lease ran out (given up instead after
    JOB_MAX_ATTEMPTS claims). Returns the Job or None."""
    now = timezone.now()
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status not in ACTIVE:
        return None
    tries = F("handbacks") + settings.JOB_MAX_ATTEMPTS  # hand-backs are claims that are no one's fault
    if job.status == Status.RUNNING and move(
        job_id,
        [Status.RUNNING],
        Status.FAILED,
        where={"lease_expires_at__lte": now, "attempts__gte": tries},
        attempt_files=[],
        reason="worker_lost",
        error=f"The job stopped its worker {settings.JOB_MAX_ATTEMPTS} times and was given up.",
    ):
        remove(job.attempt_files)
        drop(job_id)
        return None
    claimed = Job.objects.filter(claimable(now), pk=job_id, attempts__lt=tries).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        lease_expires_at=lease(),
        worker=worker_id(),
        started_at=now,
        progress=0,
        eta_at=None,
        attempt_files=[],
        hand_back=False,
        fanout="",  # an earlier claim's parts are no longer valid; its helpers stop within a window
    )
    if not claimed:
        log.info(
            "job %s not claimed: %s, worker %s, lease until %s",
            job_id,
            job.status,
            job.worker,
            job.lease_expires_at,
        )
        return None
    remove(job.attempt_files)  # what a killed earlier attempt stored before it could finish
    drop(job_id)  # and its partial preview
    return Job.objects.get(pk=job_id)


class Reporter:
    """Progress and cancel callbacks for the engine: throttled writes that also renew the lease."""

    def __init__(self, job):
        self.job = job
        self.started = time.monotonic()
        self.last_write = self.last_check = 0.0
        self.lost = self.handing_back = False

    def mine(self):
        return Job.objects.filter(pk=self.job.pk, status=Status.RUNNING, attempts=self.job.attempts)

    def progress(self, done, total):
        if settings.TEST_TILE_DELAY and done:
            time.sleep(settings.TEST_TILE_DELAY)  # test-only: a job long enough to cut mid-way on any CPU
        self.write(done, total)

    def write(self, done, total):
        """Progress and ETA from ``done`` of ``total`` windows (across workers for a job in parts)."""
        now = time.monotonic()
        # The first finished window is written at once: it gives the page an ETA to poll, even in a short job.
        if now - self.last_write < settings.JOB_PROGRESS_INTERVAL and done not in (1, total):
            return
        self.last_write = now
        fraction = done / total if total else 0
        eta = None
        if done:
            eta = timezone.now() + timedelta(seconds=(now - self.started) / done * (total - done))
        self.lost = not self.mine().update(
            progress=round(99 * fraction, 1), eta_at=eta, lease_expires_at=lease()
        )

    def cancelled(self):
        """True when the job is no longer ours (cancelled, taken over) or its worker is shutting down and
        hands it back. The engine asks before each tile, so a job past its last tile finishes."""
        now = time.monotonic()
        if (
            not self.lost
            and not self.handing_back
            and now - self.last_check >= min(0.5, settings.JOB_PROGRESS_INTERVAL)
        ):
            self.last_check = now
            row = self.mine().values_list("hand_back", flat=True).first()
            self.lost, self.handing_back = row is None, bool(row)
        return self.lost or self.handing_back

    def renew(self):
        self.lost = self.lost or not self.mine().update(lease_expires_at=lease())


def finish(job, target, **fields):
    return move(job.pk, [Status.RUNNING], target, where={"attempts": job.attempts}, **fields)


CLAIM_TRIES = 8  # per bell: rows given up (attempts exhausted) or locked by other writers on the way
CLAIM_WAIT = 0.05  # seconds before looking again when every claimable row was locked by another writer


def claim_next():
    """Take the oldest claimable job (QUEUED, or RUNNING with its lease run out), passing over rows another
    worker is claiming this moment: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite every
    transaction is immediate (``BEGIN IMMEDIATE``, settings.py), so claims run one at a time. Returns the Job,
    or None when no job is claimable."""
    expire_dead_here()
    for _ in range(CLAIM_TRIES):
        with transaction.atomic():
            rows = Job.objects.select_for_update(skip_locked=True).filter(claimable(timezone.now()))
            job_id = rows.order_by("created_at").values_list("pk", flat=True).first()
            job = claim(job_id) if job_id else None  # None when given up: its attempts ran out
        if job is not None:
            return job
        if job_id is None:
            # SKIP LOCKED also passes over a row that another writer (not a claim) holds for a moment:
            # look again rather than waste the bell.
            if not Job.objects.filter(claimable(timezone.now())).exists():
                return None
            time.sleep(CLAIM_WAIT)
    return None


def expire_dead_here():
    """End the lease of RUNNING jobs whose worker on this host is dead (a pool child killed or out of memory),
    so the bell Celery redelivers for it claims the job at once rather than after the lease."""
    now = timezone.now()
    running = Job.objects.filter(
        status=Status.RUNNING, worker__startswith=f"{socket.gethostname()}:", lease_expires_at__gt=now
    )
    for pk, worker in running.values_list("pk", "worker"):
        if _pid_is_dead(worker):
            Job.objects.filter(pk=pk, status=Status.RUNNING, worker=worker).update(lease_expires_at=now)


def run_job():
    """What a bell does: claim the oldest claimable job and run it (upscale, store, record the outcome), or,
    with none to claim, help with the parts of a job shared out. Returns the final status, for the log."""
    job = claim_next()
    if job is None:
        return fanout.help_any()
    logs.job_id.set(str(job.pk))  # the worker's lines and Celery's last one name the job
    log.info("job %s claimed, attempt %s", job.pk, job.attempts)
    saved = []  # storage names written so far, removed again unless the job ends DONE
    partial = Partial(job)
    try:
        fields = upscale_and_store(job, saved, partial)
        partial.discard()  # before DONE: a finished job names no partial preview
        if finish(job, Status.DONE, progress=100, attempt_files=[], **fields):
            return Status.DONE
        error = None  # cancelled, or taken over by another worker, meanwhile
    except Exception as e:
        error, reason = failure(job, e)
    finally:
        partial.discard()  # whatever the outcome: the result (or the error) replaces it on the page
        if not Job.objects.filter(pk=job.pk, status=Status.DONE, attempts=job.attempts).exists():
            remove(saved)
        if Job.objects.filter(pk=job.pk, attempts=job.attempts).exclude(fanout="").exists():
            fanout.discard(job.pk)  # this claim's parts (a later claim discards them itself)
    if error is None:
        return "handed back" if hand_back(job) else "cancelled"
    finish(job, Status.FAILED, error=error, reason=reason)
    return Status.FAILED


def mark_for_hand_back(workers):
    """Mark the RUNNING jobs of ``workers`` (worker ids "host:pid") for hand-back, except those handed back
    JOB_MAX_HANDBACKS times already (they run on until the worker is stopped), and put the parts of other jobs
    they help with back to the queue. Returns how many jobs and parts."""
    jobs = Job.objects.filter(
        status=Status.RUNNING, worker__in=workers, handbacks__lt=settings.JOB_MAX_HANDBACKS
    ).update(hand_back=True)
    return jobs + fanout.hand_back_parts(workers)


def hand_back(job):
    """Put a job marked for hand-back, and stopped between tiles, back to QUEUED and publish it at once, so
    another worker takes it without waiting for the lease. True if it was."""
    if not move(
        job.pk,
        [Status.RUNNING],
        Status.QUEUED,
        where={"attempts": job.attempts, "hand_back": True},
        hand_back=False,
        handbacks=F("handbacks") + 1,
        progress=0,
        eta_at=None,
        lease_expires_at=None,
        worker="",
        published_at=None,
        attempt_files=[],
    ):
        return False
    log.info("job %s handed back by its worker, which is shutting down", job.pk)
    publish(job.pk)
    return True


class StorageFailed(Exception):
    pass


def failure(job, e):
    """(the sentence a user reads, a machine-readable reason) for an expected failure; (None, None) when
    cancelled or handed back."""
    from celery.exceptions import SoftTimeLimitExceeded

    from upscale_worker.engine import Cancelled, EngineError

    if isinstance(e, Cancelled):
        return None, None
    if isinstance(e, EngineError):
        return str(e), "engine"
    if isinstance(e, SoftTimeLimitExceeded):
        return "The job timed out: it ran longer than the time limit.", "timeout"
    if isinstance(e, StorageFailed):
        return str(e), "storage"
    if isinstance(e, fanout.PartsLost):
        return str(e), "worker_lost"
    log.exception("job %s failed", job.pk)
    return "The image could not be processed.", "internal"


def upscale_and_store(job, saved, partial):
    """Run the engine into a temporary folder (removed on every path), then store the outputs. The previews
    are made in a thread while the engine encodes the result, which keeps only one core busy; ``partial``
    (services/partial.py) shows the windows done so far while they are computed."""
    from concurrent.futures import ThreadPoolExecutor

    from upscale_worker.engine import Cancelled, Options  # only workers import the engine
    from upscale_worker.engine.api import assemble, finish_file, prepare_file, run_windows
    from upscale_worker.engine.config import configure

    configure(engine_config())
    reporter = Reporter(job)
    pool, previews = ThreadPoolExecutor(max_workers=1), []

    clean_tmp()
    # The pool is left (its preview and tile threads finished) before the folder they write into is removed.
    with tempfile.TemporaryDirectory(dir=settings.WORKER_TMP_DIR, prefix=f"job-{os.getpid()}-") as tmp, pool:
        dst, tiles_dir = Path(tmp) / f"result.{job.format}", Path(tmp) / "tiles"

        def start_previews(rgb, alpha):  # called by the engine just before it encodes
            previews.append(pool.submit(make_previews, job, rgb, alpha))
            previews.append(pool.submit(make_tiles, job, rgb, alpha, tiles_dir))

        with job.input_file.open("rb") as src:
            prepared = prepare_file(
                src.read(),
                job.scale,
                job.format,
                Options(source=job.source, network=job.network),
                cancelled=reporter.cancelled,
                target=job.target,  # pinned with the plan: the result is resized once, here, after assembly
            )
        helpers = []
        partial.begin(prepared)
        if fanout.wanted(prepared):  # a large job: shared out in parts, assembled here
            rgb, helpers = fanout.coordinate(job, prepared, reporter, partial)
        else:
            windows = run_windows(prepared, range(prepared.cut.total), reporter.progress, reporter.cancelled)
            rgb = assemble(prepared, partial.watch(windows))
        result = finish_file(prepared, rgb, dst, job.format, job.quality, job.keep_metadata, start_previews)
        reporter.renew()
        if reporter.lost:
            raise Cancelled()
        output_bytes = dst.stat().st_size
        try:
            store_result(job, dst, previews[0].result(), saved)
            tiles = store_tiles(job, tiles_dir, previews[1].result(), saved)
        except OSError as e:
            log.exception("could not store the result of job %s", job.pk)
            raise StorageFailed(
                f"The result could not be stored ({e.strerror or e}); try again later."
            ) from e
        w, h = result.output_size
        return {
            "output_width": w,
            "output_height": h,
            "output_bytes": output_bytes,
            "result_file": saved[0],
            "result_preview": saved[1],
            "input_preview": saved[2],
            "thumbnail": saved[3],
            **tiles,
            "model": result.model,
            "variant": result.variant,
            "model_choice": result.choice[:255],
            "helpers": helpers,
        }


def make_previews(job, rgb, alpha):
    """The result preview from the engine's pixels, the input preview and the thumbnail, made by the engine
    (upscale_worker/engine/previews.py): [(extension, content)] x 3."""
    from upscale_worker.engine.previews import input_previews, pixels_preview

    made = [pixels_preview(rgb, alpha, settings.PREVIEW_SIZE)]
    side = max(job.input_width or 0, job.input_height or 0)
    with default_storage.open(job.input_file.name, "rb") as f:  # not the engine's handle
        raw = (
            f.read()
        )  # a storage fault raises here (OSError: "storage"); a damaged image below (EngineError)
    made += input_previews(io.BytesIO(raw), side, (settings.PREVIEW_SIZE, settings.THUMBNAIL_SIZE))
    return [(ext, ContentFile(data)) for ext, data in made]


def make_tiles(job, rgb, alpha, out_dir):
    """The deep-zoom pyramids of the input ("before", at its own size) and the result ("after"), written as
    files into ``out_dir``: {"before": info, "after": info} (webapp.jobs.tiles.write_pyramid)."""
    from upscale_worker.engine import pixels
    from webapp.jobs.tiles import write_pyramid

    out_dir.mkdir()

    def write(name, data):
        (out_dir / name).write_bytes(data)

    with default_storage.open(job.input_file.name, "rb") as f:
        before = pixels.load(f)  # as the engine reads it: 16-bit, CMYK, orientation, grey keys
    info = {"before": write_pyramid(before.rgb, before.alpha, "before", write)}
    del before
    info["after"] = write_pyramid(rgb, alpha, "after", write)
    return info


def store_tiles(job, tiles_dir, info, saved):
    """Store the tiles made by make_tiles in a new folder, noted first as store_result notes its files.
    Returns the job's tile fields."""
    folder = storage_folder("tiles")
    saved.append(folder)
    Job.objects.filter(pk=job.pk, attempts=job.attempts).update(attempt_files=saved)
    size = 0
    for path in tiles_dir.iterdir():
        with open(path, "rb") as f:
            if default_storage.save(folder + path.name, File(f)) != folder + path.name:
                raise OSError(f"storage renamed {folder + path.name}")
        size += path.stat().st_size
    return {"tiles": folder, "tiles_info": info, "tiles_bytes": size}


def clean_tmp():
    """Remove the temporary folders of this host's dead processes (killed mid-job, so never cleaned)."""
    settings.WORKER_TMP_DIR.mkdir(parents=True, exist_ok=True)
    for folder in settings.WORKER_TMP_DIR.glob("job-*-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and _pid_is_dead(f"{socket.gethostname()}:{pid}"):
            shutil.rmtree(folder, ignore_errors=True)


class ResultFile(File):
    """The engine's output, moved into a FileSystemStorage rather than copied: Django moves any content with a
    temporary_file_path, as it does large uploads. Other storages read it as they read any file."""

    def temporary_file_path(self):
        return self.name


def store_result(job, dst, previews, saved):
    """Save the result and its previews (result, input, thumbnail) through the storage API under new
    unguessable names, noted first (in ``saved`` and, in one write, in the row) so that a half-written file
    is removed too: by this attempt on failure, by the next claim if this process is killed."""
    with open(dst, "rb") as result:
        outputs = [("results", dst.suffix.lstrip("."), ResultFile(result))] + [
            ("previews", *p) for p in previews
        ]
        names = [default_storage.get_available_name(storage_name(kind, ext)) for kind, ext, _ in outputs]
        saved.extend(names)
        Job.objects.filter(pk=job.pk, attempts=job.attempts).update(attempt_files=saved)
        for name, (_, _, content) in zip(names, outputs):
            if default_storage.save(name, content) != name:
                raise OSError(f"storage renamed {name}")
