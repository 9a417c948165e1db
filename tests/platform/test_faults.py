"""Hardening with real workers this module starts and kills: kill -9 of the pool child and of the whole
worker, a job that kills its worker every time, the soft time limit, a full disk, fuzzed uploads."""

import os
import random
import signal
import subprocess
import time

import pytest
from django.conf import settings

from tests.conftest import image_bytes, media_files, upload_file, wait_for
from tests.platform.factories import make_job
from webapp.jobs import queue
from webapp.jobs.models import Job
from webapp.jobs.services import sweeper

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def submit(api, size=48, **data):
    r = api.post(
        "/api/v1/jobs",
        {"image": upload_file(width=size, height=size), "scale": 2, **data},
        format="multipart",
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def wait_running(job_id, attempt=1, timeout=30, progressed=True):
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.status == "running" and job.attempts == attempt and (job.progress > 0 or not progressed):
            return job
        assert job.status in ("queued", "running") and time.monotonic() < deadline, (job.status, job.error)
        time.sleep(0.02)


RANK = {"queued": 0, "running": 1, "done": 2}
# A job of many tiles (600x600 at x2: 36 of 128x128), so that a kill lands mid-job rather than after it:
# with one tile an int8 job is done a few ms after its first progress write.
LONG = 600


def assert_done_once(job_id, attempts=2, linger=1.0):
    """The job ends DONE after ``attempts`` claims, its status only ever moved forward, and it stays
    done with one result file (a late duplicate message does not run it again)."""
    seen, done_at = [], None
    deadline = time.monotonic() + 60
    while done_at is None or time.monotonic() < done_at + linger:
        job = Job.objects.get(pk=job_id)
        seen.append((RANK[job.status], job.attempts))
        if job.status == "done" and done_at is None:
            done_at = time.monotonic()
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.02)
    assert seen == sorted(seen), "status or attempts went backwards"
    assert (job.status, job.attempts) == ("done", attempts)
    assert len(media_files("results")) == 1  # one result file: the job ran to the end once


def pool_child(job):
    return int(job.worker.rpartition(":")[2])


def test_it_redelivers_at_once_when_the_pool_child_is_killed(alice_api, start_worker):
    start_worker()
    job_id = submit(alice_api, LONG)
    os.kill(pool_child(wait_running(job_id)), signal.SIGKILL)
    killed = time.monotonic()
    wait_running(job_id, attempt=2, progressed=False)
    assert time.monotonic() - killed < settings.JOB_LEASE_SECONDS  # no wait for the lease
    assert_done_once(job_id)


def test_it_finishes_once_after_the_whole_worker_is_killed(alice_api, start_worker):
    whole = {"FANOUT_MIN_MEGAPIXELS": "1000"}  # no helper bells waiting: the sweep alone must ring for it
    first = start_worker(**whole)
    job_id = submit(alice_api, LONG)
    wait_running(job_id)
    first.kill()
    assert sweeper.sweep() == 0  # its lease still runs: maybe it is only slow
    start_worker(**whole)
    deadline = time.monotonic() + settings.JOB_LEASE_SECONDS + 5
    while sweeper.sweep() == 0:  # what the beat does every SWEEP_INTERVAL
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert_done_once(job_id)


def test_it_gives_up_on_a_job_that_kills_its_worker_every_time(alice_api, start_worker):
    worker = start_worker()
    job_id = submit(alice_api, LONG)
    for attempt in range(1, settings.JOB_MAX_ATTEMPTS + 1):
        os.kill(pool_child(wait_running(job_id, attempt)), signal.SIGKILL)
    job = wait_for(job_id, timeout=30)
    assert job.status == "failed" and f"{settings.JOB_MAX_ATTEMPTS} times" in job.error
    assert wait_for(submit(alice_api)).status == "done"  # others keep flowing
    assert worker.proc.poll() is None


def test_it_fails_a_job_over_the_soft_time_limit_and_cleans_up(alice, alice_api, start_worker):
    worker = start_worker()
    job = make_job(alice, size=3 * LONG)  # several seconds of work even where 512x512 took under one
    queue.ring(soft_time_limit=1, time_limit=60)  # the only job: the bell's claim takes it
    job = wait_for(job.id, timeout=30)
    assert job.status == "failed" and "timed out" in job.error
    assert list(settings.WORKER_TMP_DIR.iterdir()) == []
    assert media_files("results") == []
    assert wait_for(submit(alice_api)).status == "done"  # the worker keeps serving
    assert worker.proc.poll() is None


@pytest.fixture
def full_disk():
    """A tiny tmpfs, filled up, where results are stored."""
    results = settings.MEDIA_ROOT / "results"
    results.mkdir(parents=True, exist_ok=True)
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(results)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with open(results / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield results
    finally:
        subprocess.run(["umount", str(results)], check=True)


def test_it_fails_with_a_clear_message_when_the_disk_is_full(alice_api, start_worker, full_disk):
    start_worker()
    job = wait_for(submit(alice_api))
    assert job.status == "failed"
    assert job.error == "The result could not be stored (No space left on device); try again later."
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # nothing half-written left
    assert not job.result_file


def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        i = rng.randrange(len(data))
        if op < 0.6:
            data[i] ^= 1 << rng.randrange(8)
        elif op < 0.8:
            data = data[: max(1, i)]
        else:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def test_it_survives_thousands_of_mutated_uploads(alice_api, start_worker, settings):
    import io

    from webapp.jobs.validation import Invalid, read_header

    rng = random.Random(1234)
    seeds = [image_bytes(32, 24, fmt) for fmt in ("PNG", "JPEG", "WEBP")] + [
        image_bytes(16, 16, "PNG", "RGBA")
    ]
    slowest = 0.0
    for _ in range(3000):
        data = mutate(rng.choice(seeds), rng)
        started = time.monotonic()
        try:
            read_header(io.BytesIO(data))
        except Invalid:
            pass
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.5

    settings.UPLOADS_PER_MINUTE = settings.MAX_QUEUED_JOBS_PER_USER = 10000
    worker = start_worker()
    codes, accepted = [], []
    for n in range(150):
        data = mutate(rng.choice(seeds), rng)
        r = alice_api.post(
            "/api/v1/jobs", {"image": upload_file(f"f{n}.png", data), "scale": 2}, format="multipart"
        )
        codes.append(r.status_code)
        if r.status_code == 201:
            accepted.append(r.json()["id"])
    assert set(codes) <= {201, 400}
    for job_id in accepted:
        assert wait_for(job_id, timeout=60).status in ("done", "failed")
    assert worker.proc.poll() is None and " ready." in worker.output()
