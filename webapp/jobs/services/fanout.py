"""One job, many workers: a large job is split into parts (runs of the engine's windows) that idle workers
help with, while the worker that claimed the job coordinates it (docs/fanout.md).

- The coordinator pins the engine's plan (precision, float type, window side, back-projection) in the job row,
  creates one Part row per share under a fresh ``run`` token and rings the doorbell for helpers (a worker
  with no job to claim helps with the oldest shared-out job's parts). It then computes parts itself until none is left to take, and retakes parts whose lease ran out
  (or whose worker, on its own host, is dead); so a lost message or a dead helper costs only that part.
- A part is claimed by one conditional UPDATE (QUEUED, or RUNNING with its lease run out, fewer than
  JOB_MAX_ATTEMPTS claims not counting hand-backs) and is valid while the job is RUNNING with the same run.
  A helper stores its windows in the shared storage under an unguessable name (noted in the row first) and
  marks the part DONE with the same condition; a helper that lost its part removes what it wrote.
- Assembly and encoding happen once, on the coordinator: it already holds the decoded picture, its alpha,
  metadata and previews, and its claim of the job is what every finishing write is conditional on, so the
  rules for a whole job (one result, hand-back, cancel, attempts) apply unchanged. Its own parts never leave
  its memory.
- Part rows and files go when the job leaves RUNNING (discard()), or at the next claim or delete when the
  coordinator died; the storage sweep removes what a killed helper wrote after that.
"""

import io
import logging
import secrets
import time
from dataclasses import asdict
from itertools import pairwise

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F, Sum
from django.utils import timezone

from webapp.jobs import queue
from webapp.jobs.models import Job, Part, Status, claimable
from webapp.jobs.services.files import remove, storage_name

log = logging.getLogger(__name__)


class PartsLost(Exception):
    """A part stopped its workers JOB_MAX_ATTEMPTS times: the job fails as a job that kills its worker."""


def wanted(prepared):
    """True when a job's windows (overlaps included) reach FANOUT_MIN_MEGAPIXELS and there are two or more."""
    cut = prepared.cut
    return cut.total >= 2 and cut.total * cut.win_h * cut.win_w / 1e6 >= settings.FANOUT_MIN_MEGAPIXELS


def shares(total, count):
    """[(first, stop)]: ``total`` windows in min(total, count) contiguous runs differing by one at most."""
    count = max(1, min(total, count))
    bounds = [i * total // count for i in range(count + 1)]
    return list(pairwise(bounds))


def coordinate(job, prepared, reporter, partial=None):
    """Split the claimed ``job`` (an engine Prepared), compute parts until all are done, and return the
    assembled RGB (the picture's dtype) and the helper workers' ids; the parts are gone by then. Raises
    Cancelled when the job is no longer ours (cancelled, handed back, taken over) and PartsLost when a part
    exhausted its attempts. ``partial`` (services/partial.py) is shown every window the coordinator computes
    and, when due, the windows of helper parts done since (read once from storage for it)."""
    from upscale_worker.engine import Cancelled
    from upscale_worker.engine.api import assemble

    run = split(job, prepared)
    tally, mine = Tally(run, prepared.cut.total, reporter), {}
    seen = set()
    if partial is not None:
        partial.fetch = lambda: helper_windows(run, seen)
    shown = partial.add if partial is not None else lambda index, interior: None
    while True:
        if reporter.cancelled():
            raise Cancelled()
        part = claim_part(job.pk, run, job.worker)
        if part is not None:
            try:
                interiors = compute(part, prepared, reporter.cancelled, tally.report, shown)
            except Cancelled:
                if reporter.cancelled():
                    raise
                continue  # only the part was lost (retaken after a stall): take what is left
            if finish_part(part):
                mine.update(interiors)
            continue
        if tally.report() == prepared.cut.total:
            break
        if partial is not None:
            partial.tick()
        expire_dead(run)
        if exhausted(run):
            raise PartsLost(f"A part of the job stopped its worker {settings.JOB_MAX_ATTEMPTS} times.")
        time.sleep(settings.FANOUT_POLL)
    rgb = assemble(prepared, gathered(run, mine))
    others = helpers(job.pk, run, job.worker)
    discard(job.pk)  # before the job is done: a finished job has no parts
    return rgb, others


def split(job, prepared):
    """Part rows for a new run, the pinned plan in the row, helper messages out. Returns the run token."""
    from upscale_worker.engine import Cancelled

    discard(job.pk)  # parts of an earlier claim of this job (its coordinator died, or it was retried)
    run = secrets.token_hex(8)
    spans = shares(prepared.cut.total, settings.FANOUT_MAX_PARTS)
    Part.objects.bulk_create(
        Part(job_id=job.pk, run=run, index=i, first=a, stop=b) for i, (a, b) in enumerate(spans)
    )
    plan = asdict(prepared.pinned)
    if not Job.objects.filter(pk=job.pk, status=Status.RUNNING, attempts=job.attempts).update(
        fanout=run, plan=plan
    ):
        discard(job.pk)
        raise Cancelled()
    helpers = queue.ring(min(len(spans) - 1, settings.FANOUT_HELPERS))
    windows = prepared.cut.total
    log.info("job %s split: %s windows in %s parts, %s helpers asked", job.pk, windows, len(spans), helpers)
    return run


def claim_part(job_id, run, worker):
    """Take one part of the job's ``run``: QUEUED, or RUNNING with its lease run out, below the attempt cap.
    The job must be RUNNING with that run and a live coordinator. Returns the Part or None."""
    if not coordinated(job_id, run):
        return None
    cap = F("handbacks") + settings.JOB_MAX_ATTEMPTS
    candidates = Part.objects.filter(claimable(timezone.now()), job_id=job_id, run=run, attempts__lt=cap)
    for pk, output in candidates.order_by("index").values_list("pk", "output")[:8]:
        if candidates.filter(pk=pk).update(
            status=Status.RUNNING,
            worker=worker,
            lease_expires_at=_lease(),
            attempts=F("attempts") + 1,
            output="",
        ):
            remove([output] if output else [])  # a stalled holder's file, never to be marked done
            return Part.objects.get(pk=pk)
    return None


def coordinated(job_id, run):
    """True while the job runs split ``run`` under a live coordinator (its lease runs; on this host, its pid
    lives): helping a dead one's job would only delay the claim that restarts it."""
    from webapp.jobs.services.host import _pid_is_dead

    live = Job.objects.filter(
        pk=job_id, status=Status.RUNNING, fanout=run, lease_expires_at__gt=timezone.now()
    )
    coordinator = live.values_list("worker", flat=True).first()
    return coordinator is not None and not _pid_is_dead(coordinator)


def _lease():
    from webapp.jobs.services.host import lease

    return lease()


def _held(part):
    """The part's row while ``part`` still holds it and its job still runs that split."""
    return Part.objects.filter(
        pk=part.pk, status=Status.RUNNING, worker=part.worker, attempts=part.attempts, run=part.run
    ).filter(job__status=Status.RUNNING, job__fanout=part.run, job__lease_expires_at__gt=timezone.now())


def compute(part, prepared, cancelled=lambda: False, progress=lambda done: None, shown=None):
    """The part's windows: {index: interior}, each also handed to ``shown(index, interior)`` as it is made.
    The part's lease is renewed between windows (at most every half second); raises Cancelled when
    ``cancelled()`` says so or the part is no longer held."""
    from upscale_worker.engine.api import run_windows

    checked = [time.monotonic()]

    def stop():
        now = time.monotonic()
        if now - checked[0] >= min(0.5, settings.JOB_PROGRESS_INTERVAL):
            checked[0] = now
            if not _held(part).update(lease_expires_at=_lease()):
                return True
        return cancelled()

    def tick(done, total):
        if settings.TEST_TILE_DELAY and done:
            time.sleep(settings.TEST_TILE_DELAY)  # test-only: parts long enough to cut mid-way
        progress(done)

    interiors = {}
    for index, interior in run_windows(prepared, part.windows, tick, stop):
        interiors[index] = interior
        if shown is not None:
            shown(index, interior)
    return interiors


def finish_part(part, output=""):
    """Mark the part DONE (with the storage name of its output, for a helper's). True if it still held it."""
    done = _held(part).update(status=Status.DONE, output=output, lease_expires_at=None)
    if done:
        from webapp import metrics

        metrics.part_done()
    return bool(done)


def expire_dead(run):
    """Parts whose worker on this host is dead (kill -9, OOM) are taken back at once, not after their lease."""
    from webapp.jobs.services.host import _pid_is_dead

    running = Part.objects.filter(run=run, status=Status.RUNNING, lease_expires_at__gt=timezone.now())
    for pk, worker in running.values_list("pk", "worker"):
        if _pid_is_dead(worker):
            Part.objects.filter(pk=pk, worker=worker, status=Status.RUNNING).update(
                lease_expires_at=timezone.now()
            )


def exhausted(run):
    cap = F("handbacks") + settings.JOB_MAX_ATTEMPTS
    over = Part.objects.filter(run=run, status=Status.RUNNING, lease_expires_at__lte=timezone.now())
    return over.filter(attempts__gte=cap).exists()


class Tally:
    """The coordinator's progress: windows of DONE parts (read at most every half second) plus those of the
    part it is computing, written through the job's Reporter (which renews the job's lease)."""

    def __init__(self, run, total, reporter):
        self.run, self.total, self.reporter = run, total, reporter
        self.done, self.read_at = 0, 0.0

    def report(self, current=0):
        now = time.monotonic()
        if now - self.read_at >= min(0.5, settings.JOB_PROGRESS_INTERVAL):
            self.read_at = now
            done = Part.objects.filter(run=self.run, status=Status.DONE).aggregate(
                n=Sum(F("stop") - F("first"))
            )["n"]
            self.done = done or 0
        self.reporter.write(min(self.done + current, self.total), self.total)
        return self.done


def gathered(run, mine):
    """(window, interior) of every part: the coordinator's own from memory, the helpers' from storage."""
    yield from mine.items()
    for name in (
        Part.objects.filter(run=run, status=Status.DONE).exclude(output="").values_list("output", flat=True)
    ):
        yield from stored_windows(name)


def stored_windows(name):
    """(window, interior) of one helper part's stored output."""
    with (
        default_storage.open(name, "rb") as f,
        np.load(io.BytesIO(f.read()), allow_pickle=False) as saved,
    ):
        yield from ((int(index), saved[index]) for index in saved.files)


def helper_windows(run, seen):
    """(window, interior) of the helper parts of ``run`` done since the last call (``seen``: the storage
    names read so far, updated), for the partial preview. A part removed meanwhile is skipped."""
    done = Part.objects.filter(run=run, status=Status.DONE).exclude(output="").exclude(output__in=seen)
    for name in done.values_list("output", flat=True):
        seen.add(name)
        try:
            yield from stored_windows(name)
        except OSError:
            continue


def helpers(job_id, run, coordinator):
    """The workers other than the coordinator that computed parts of ``run``, sorted."""
    done = Part.objects.filter(job_id=job_id, run=run, status=Status.DONE).exclude(worker=coordinator)
    return sorted(set(done.values_list("worker", flat=True)))


def discard(job_id):
    """Remove every part of the job and what helpers stored for them (the job left RUNNING or starts anew)."""
    parts = Part.objects.filter(job_id=job_id)
    remove([name for name in parts.values_list("output", flat=True) if name])
    parts.delete()


def hand_back_parts(workers):
    """Put the parts that ``workers`` (shutting down) are computing back to QUEUED, not counted as attempts;
    the coordinator (or another helper) takes them. A coordinator's own parts stay with its job's hand-back."""
    running = Part.objects.filter(status=Status.RUNNING, worker__in=workers).exclude(job__worker=F("worker"))
    return running.update(
        status=Status.QUEUED, worker="", lease_expires_at=None, handbacks=F("handbacks") + 1
    )


def help_any():
    """A bell with no job to claim: help with the oldest shared-out job that has a part to take (help_with).
    Returns what was done, for the log; "skipped" when no part waits (a surplus bell)."""
    waiting = Part.objects.filter(claimable(timezone.now()), job__status=Status.RUNNING, run=F("job__fanout"))
    job_run = waiting.order_by("job__created_at").values_list("job_id", "run").first()
    return help_with(*job_run) if job_run else "skipped"


def help_with(job_id, run):
    """A helper: take parts of the job's ``run`` one after another until none is left. Returns what it did,
    for the log; "skipped" for a finished or re-split job, or with nothing left to take."""
    from webapp.jobs.services.host import worker_id

    job = Job.objects.filter(pk=job_id).first()
    if job is None or not coordinated(job_id, run):
        return "skipped"
    me, prepared, done = worker_id(), None, 0
    while (part := claim_part(job_id, run, me)) is not None:
        try:
            prepared = prepared or _prepare(job)
            stored = store_part(part, compute(part, prepared))
        except Exception as e:
            return _gave_up(part, e)
        if not stored:
            return f"part {part.index} of job {job_id} lost after {done} done"
        done += 1
        log.info("job %s part %s done by helper %s", job_id, part.index, me)
    return f"{done} parts of job {job_id}" if done else "skipped"


def _prepare(job):
    from upscale_worker.engine.api import Pinned, prepare_file
    from upscale_worker.engine.config import configure
    from webapp.jobs.services.host import engine_config

    configure(engine_config())  # this worker's threads and folders; the plan itself is the coordinator's
    with job.input_file.open("rb") as src:
        return prepare_file(src.read(), job.scale, job.format, pinned=Pinned.from_dict(job.plan))


def store_part(part, interiors):
    """Write a helper's windows under a new unguessable name (noted first) and mark the part DONE. False (and
    nothing left behind) when the part was lost meanwhile."""
    name = storage_name("parts", "npz")
    if not _held(part).update(output=name):
        return False
    buf = io.BytesIO()
    np.savez(buf, **{str(index): interior for index, interior in interiors.items()})
    if default_storage.save(name, ContentFile(buf.getvalue())) != name or not finish_part(part, name):
        remove([name])
        return False
    return True


def _gave_up(part, e):
    """Hand a part this helper could not finish back to the queue (a claim counted), so the coordinator takes
    it; the job's own claim decides the job's fate."""
    from upscale_worker.engine import Cancelled

    released = _held(part).update(status=Status.QUEUED, worker="", lease_expires_at=None)
    if isinstance(e, Cancelled):
        return f"part {part.index} of job {part.job_id} stopped"
    log.warning("part %s of job %s given back: %r", part.index, part.job_id, e, exc_info=not released)
    return f"part {part.index} of job {part.job_id} given back"
