"""How long a queued job will wait: its place in the queue and an ETA from the measured throughput."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from webapp.jobs.models import Job, Status

RECENT_JOBS = 20  # finished jobs whose mean run time is taken
BUSY_WINDOW = timedelta(minutes=10)  # a worker that started a job this recently counts as serving the queue


def queue_position(job):
    """1 for the next queued job to start (the queue is first in, first out by creation), None unless QUEUED."""
    if job.status != Status.QUEUED:
        return None
    return Job.objects.filter(status=Status.QUEUED, created_at__lt=job.created_at).count() + 1


def throughput():
    """(mean run seconds of the last RECENT_JOBS done jobs, workers busy in BUSY_WINDOW, running jobs), or None
    before any job has run. Cached for 10 s: every queued job's poll reads it."""
    try:
        measured = cache.get("queue-throughput")
    except Exception:  # Redis down: computed each time (a job is accepted while Redis is down)
        measured = None
    if measured is None:
        done = Job.objects.filter(status=Status.DONE).exclude(started_at=None).order_by("-finished_at")
        runs = [
            (j.finished_at - j.started_at).total_seconds()
            for j in done.only("started_at", "finished_at")[:RECENT_JOBS]
        ]
        recent = Job.objects.filter(started_at__gte=timezone.now() - BUSY_WINDOW).exclude(worker="")
        workers = recent.values("worker").distinct().count()
        running = Job.objects.filter(status=Status.RUNNING).count()
        measured = [sum(runs) / len(runs) if runs else None, max(1, workers), running]
        try:
            cache.set("queue-throughput", measured, 10)
        except Exception:
            pass
    return None if measured[0] is None else tuple(measured)


def wait_eta_seconds(job, position):
    """Seconds until a queued job is done: the work ahead of it (the running jobs' remaining output
    megapixels and the queued jobs' before it, each at the speed of its scale and network) shared among the
    busy workers, plus its own run at the speed of its scale and network (see estimate). Before that speed
    is measured: the mean run time of recent jobs for each job ahead and its own, the queue's throughput
    being workers / mean run (Little's law). None before any job has run."""
    measured = throughput()
    if measured is None or position is None:
        return None
    run, workers, running = measured
    own_speed = cached_speed(job.scale, job.network)
    if own_speed is None:
        return round((position - 1 + running) * run / workers + run, 1)
    ahead = Job.objects.filter(
        Q(status=Status.RUNNING) | Q(status=Status.QUEUED, created_at__lt=job.created_at)
    ).values_list("input_width", "input_height", "scale", "network", "progress")
    wait = work_seconds(ahead, own_speed)
    return round(wait / workers + job.input_width * job.input_height * job.scale**2 / 1e6 / own_speed, 1)


def cached_speed(scale, network):
    """speed(scale, network)'s MP/s, cached for 10 s like throughput(): every queued job's poll reads it."""
    key = f"queue-speed:{scale}:{network}"
    try:
        measured = cache.get(key)
    except Exception:  # Redis down: computed each time
        measured = None
    if measured is None:
        measured = [speed(scale, network)[0]]
        try:
            cache.set(key, measured, 10)
        except Exception:
            pass
    return measured[0]


def work_seconds(jobs, fallback):
    """Seconds one worker needs for ``jobs`` ((width, height, scale, network, progress) rows): each job's output
    megapixels left at the speed of its own scale and network, else of its scale on any network, else
    ``fallback`` MP/s. None when a job has no speed at all (nothing measured yet)."""
    speeds, seconds = {}, 0.0
    for w, h, s, n, progress in jobs:
        if (s, n) not in speeds:
            speeds[s, n] = cached_speed(s, n) or cached_speed(s, None) or fallback
        if speeds[s, n] is None:
            return None
        seconds += w * h * s * s / 1e6 * (1 - progress / 100) / speeds[s, n]
    return seconds


def expires_at(job):
    """When the sweeper deletes the job's files (RETENTION_DAYS after its creation)."""
    return job.created_at + timedelta(days=settings.RETENTION_DAYS)


def speed(scale, network=None):
    """Output megapixels per second of the workers on the last RECENT_JOBS done jobs at ``scale`` run by
    ``network`` (the job's recorded network; None: any): (MP/s, jobs measured), or (None, 0) before any. A
    job's time is its run, started_at to finished_at (parts shared out included), not its wait."""
    done = (
        Job.objects.filter(status=Status.DONE, scale=scale).exclude(started_at=None).exclude(finished_at=None)
    )
    if network:
        done = done.filter(network=network)
    rows = done.order_by("-finished_at").values_list(
        "input_width", "input_height", "scale", "started_at", "finished_at"
    )[:RECENT_JOBS]
    mp = sum(w * h * s * s / 1e6 for w, h, s, *_ in rows)
    seconds = sum((end - start).total_seconds() for *_, start, end in rows)
    return (mp / seconds if seconds > 0 else None), len(rows)


def estimate(width, height, scale, network):
    """How long a new job of ``width`` x ``height`` at ``scale`` on ``network`` (edsr, rlfn) would take,
    before it is uploaded: its run at the speed measured for that scale and network, and the wait for the
    work already queued or running, each job's output megapixels left at the speed of its own scale and
    network (else of its scale on any network, else the new job's), shared among the busy workers. Seconds,
    None where nothing was measured yet. Returns a dict (the API's EstimateSerializer)."""
    own_speed, measured = speed(scale, network)
    output_mp = width * height * scale * scale / 1e6
    run = round(output_mp / own_speed, 1) if own_speed else None
    ahead = Job.objects.filter(status__in=(Status.QUEUED, Status.RUNNING)).values_list(
        "input_width", "input_height", "scale", "network", "progress"
    )
    wait = work_seconds(ahead, own_speed)
    busy = throughput()
    workers = busy[1] if busy else 1
    wait = None if wait is None else round(wait / workers, 1)
    return {
        "network": network,
        "output_width": width * scale,
        "output_height": height * scale,
        "output_megapixels": round(output_mp, 2),
        "megapixels_per_second": round(own_speed, 3) if own_speed else None,
        "measured_jobs": measured,
        "queued_jobs": len(ahead),
        "run_seconds": run,
        "wait_seconds": wait,
        "total_seconds": None if run is None or wait is None else round(run + wait, 1),
    }
