"""How long a queued job will wait: its place in the queue and an ETA from the measured throughput."""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
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
    """Seconds until a queued job is done: the work ahead of it (the queued jobs before it and the running
    ones, each taking the mean run time) shared among the busy workers, plus its own mean run time: the
    queue's throughput is workers / mean run (Little's law). None before any job has run."""
    measured = throughput()
    if measured is None or position is None:
        return None
    run, workers, running = measured
    return round((position - 1 + running) * run / workers + run, 1)


def expires_at(job):
    """When the sweeper deletes the job's files (RETENTION_DAYS after its creation)."""
    return job.created_at + timedelta(days=settings.RETENTION_DAYS)
