"""A deploy or scale-in loses nothing and wastes no minutes: SIGTERM to a real worker running a many-tile
job hands the job back between tiles, and a second real worker takes it before the first claim's lease would
have expired. One result, one hand-back, attempts still the claim counter."""

import os
import signal
import time

import pytest
from django.utils import timezone

from tests.conftest import media_files, upload_file, wait_for
from webapp.jobs.models import Job
from webapp.jobs.services import worker as services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MANY_TILES = 1000  # 1000x1000 at x2: 100 windows of 128x128, several seconds on one thread


def submit(api, size=MANY_TILES):
    r = api.post(
        "/api/v1/jobs", {"image": upload_file(width=size, height=size), "scale": 2}, format="multipart"
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def running_with_progress(job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while (job := Job.objects.get(pk=job_id)).status != "running" or job.progress <= 0:
        assert job.status in ("queued", "running") and time.monotonic() < deadline, (job.status, job.error)
        time.sleep(0.02)
    return job


def pool(worker):
    import psutil

    return {child.pid for child in psutil.Process(worker.proc.pid).children(recursive=True)}


def test_it_hands_a_running_job_back_on_sigterm_and_another_worker_finishes_it(alice_api, start_worker):
    whole = {"FANOUT_MIN_MEGAPIXELS": "1000"}  # a job run whole (test_fanout.py hands back parts)
    workers = [start_worker(**whole), start_worker(**whole)]
    job_id = submit(alice_api)
    claim = running_with_progress(job_id)
    first, second = sorted(workers, key=lambda w: int(claim.worker.rpartition(":")[2]) not in pool(w))
    claim.refresh_from_db()
    assert claim.progress < 50  # mid-job: tiles remain
    first_lease = claim.lease_expires_at
    stopped, sigterm_at = time.monotonic(), timezone.now()
    os.kill(first.proc.pid, signal.SIGTERM)  # what docker stop and kubectl send: the main process only
    assert first.proc.wait(60) == 0
    exited = time.monotonic() - stopped
    job = wait_for(job_id, timeout=120)
    assert job.status == "done", job.error
    assert (job.handbacks, job.attempts) == (1, 2)
    assert job.started_at < first_lease  # the second claim did not wait for the first claim's lease
    assert job.worker.rpartition(":")[2] != claim.worker.rpartition(":")[2]
    assert len(media_files("results")) == 1
    log = first.output()
    assert "marked for hand-back" in log and "handed back" in log
    assert second.proc.poll() is None
    print(
        f"\nSIGTERM to exit of the first worker {exited:.1f} s, to the second claim "
        f"{(job.started_at - sigterm_at).total_seconds():.1f} s; the second claim started "
        f"{(first_lease - job.started_at).total_seconds():.1f} s before the first lease would have expired"
    )


def test_it_does_not_count_hand_backs_as_attempts(alice, settings):
    from tests.platform.factories import make_job

    job = make_job(alice, attempts=settings.JOB_MAX_ATTEMPTS, handbacks=1)  # two crashes and one hand-back
    assert services.claim(job.id) is not None
    job.refresh_from_db()
    assert job.attempts == settings.JOB_MAX_ATTEMPTS + 1


def test_it_stops_marking_a_job_handed_back_too_often(alice, settings):
    from tests.platform.factories import make_job

    capped = make_job(alice, "running", worker="h:1", handbacks=settings.JOB_MAX_HANDBACKS)
    marked = make_job(alice, "running", worker="h:1", handbacks=settings.JOB_MAX_HANDBACKS - 1)
    other = make_job(alice, "running", worker="h:2")
    assert services.mark_for_hand_back(["h:1"]) == 1
    assert [Job.objects.get(pk=j.pk).hand_back for j in (capped, marked, other)] == [False, True, False]


def test_a_job_past_its_last_tile_finishes_despite_the_mark(alice, settings):
    """The engine asks cancelled() before each tile only: after the last, the mark changes nothing."""
    from tests.platform.factories import make_job

    job = services.claim(make_job(alice).id)
    reporter = services.Reporter(job)
    assert not reporter.cancelled()
    services.mark_for_hand_back([job.worker])
    reporter.last_check = 0
    assert reporter.cancelled()  # between tiles: stop and hand back
    reporter.renew()
    assert not reporter.lost  # the claim is still ours: storing the result and finishing still work
    assert services.finish(job, "done")
