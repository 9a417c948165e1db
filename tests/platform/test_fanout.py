"""One job, many workers, with real worker processes: a large job is split into parts that an idle worker
helps with. The result is the one worker's to the bit; a helper killed or stopped mid-part loses only that
part; cancel, delete and retry behave as for a whole job; no part is left in storage or the database."""

import os
import signal
import time

import numpy as np
import psutil
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from tests.conftest import media_files, upload_file, wait_for
from tests.platform.factories import make_job
from webapp.jobs import queue
from webapp.jobs.models import Job, Part
from webapp.jobs.services import fanout, web
from webapp.jobs.services import worker as services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SIZE = 600  # 600x600 at x2, windows of at most 30,000 pixels: 15 fitted 216 x 136 windows, in 12 parts
SPLIT = {
    "FANOUT_MIN_MEGAPIXELS": "0.1",
    "FANOUT_MAX_PARTS": "12",
    "UPSCALE_TILE": "128",
    "UPSCALE_WINDOW_AREA": "30000",  # a window the coordinator pins: not square, no tile
}
SLOW = {**SPLIT, "TEST_TILE_DELAY": "0.15"}  # parts long enough to cut one mid-way


def submit(api, size=SIZE, **fields):
    fields = fields or {"scale": 2}
    r = api.post(
        "/api/v1/jobs", {"image": upload_file(width=size, height=size), **fields}, format="multipart"
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def pixels(job):
    with default_storage.open(job.result_file.name, "rb") as f:
        return np.asarray(Image.open(f).convert("RGB"))


def pool(worker):
    return {child.pid for child in psutil.Process(worker.proc.pid).children(recursive=True)}


def pid(worker_id):
    return int(worker_id.rpartition(":")[2])


def helper_part(job_id, timeout=60):
    """A part of the job that a helper (not the job's own worker) is computing, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        part = (
            Part.objects.filter(job_id=job_id, status="running", run=job.fanout)
            .exclude(worker=job.worker)
            .exclude(worker="")
            .first()
        )
        if part is not None:
            return job, part
        assert job.status in ("queued", "running") and time.monotonic() < deadline, (job.status, job.error)
        time.sleep(0.02)


def helper_of(workers, part):
    return next(w for w in workers if pid(part.worker) in pool(w))


def assert_nothing_left(job_id):
    assert not Part.objects.filter(job_id=job_id).exists()
    assert media_files("parts") == []


def parts_done():
    raw = queue.broker().hget("upscale:metrics", "upscale_parts_done|{}")
    return float(raw or 0)


def test_a_job_in_parts_equals_the_job_on_one_worker_and_counts_once(alice, alice_api, start_worker):
    alone = start_worker(**{**SPLIT, "FANOUT_MIN_MEGAPIXELS": "1000"})  # runs every job whole
    whole = wait_for(submit(alice_api), timeout=120)
    alone.stop()
    before = parts_done()
    start_worker(**SPLIT), start_worker(**SPLIT)
    shared = wait_for(submit(alice_api), timeout=120)
    assert (whole.status, shared.status) == ("done", "done"), (whole.error, shared.error)
    assert whole.helpers == [] and not whole.fanout
    assert shared.helpers and shared.worker not in shared.helpers  # the other worker computed parts
    assert np.array_equal(pixels(shared), pixels(whole))  # bit-identical
    assert shared.attempts == 1 and len(media_files("results")) == 2
    assert parts_done() - before == 12  # every part once, whoever computed it
    assert web.megapixels_today(alice) == 2 * (SIZE * SIZE * 4) / 1e6  # a job, not its parts
    assert_nothing_left(shared.id)


def test_a_target_job_in_parts_is_resized_once_and_equals_the_job_on_one_worker(alice_api, start_worker):
    """The pinned plan carries the target: the helpers compute x2 windows, the coordinator shrinks once."""
    alone = start_worker(**{**SPLIT, "FANOUT_MIN_MEGAPIXELS": "1000"})
    whole = wait_for(submit(alice_api, target_width=1000), timeout=120)
    alone.stop()
    start_worker(**SPLIT), start_worker(**SPLIT)
    shared = wait_for(submit(alice_api, target_width=1000), timeout=120)
    assert (whole.status, shared.status) == ("done", "done"), (whole.error, shared.error)
    assert shared.helpers and shared.plan["target_pixels"] == 1000 and shared.plan["scale"] == 2
    assert pixels(shared).shape == (1000, 1000, 3) and (shared.output_width, shared.output_height) == (
        1000,
        1000,
    )
    assert np.array_equal(pixels(shared), pixels(whole))
    assert_nothing_left(shared.id)


def test_a_helper_killed_mid_part_loses_only_that_part(alice_api, start_worker):
    workers = [start_worker(**SLOW), start_worker(**SLOW)]
    job, part = helper_part(submit(alice_api))
    os.kill(pid(part.worker), signal.SIGKILL)
    done = wait_for(job.id, timeout=120)
    assert done.status == "done", done.error
    assert (done.attempts, done.worker) == (1, job.worker)  # the job itself was never claimed again
    assert len(media_files("results")) == 1
    assert_nothing_left(job.id)
    assert all(w.proc.poll() is None for w in workers)


def test_a_redelivered_part_message_is_skipped(alice):
    job = services.claim(make_job(alice).id)
    Job.objects.filter(pk=job.pk).update(fanout="r1")
    done = Part.objects.create(job=job, run="r1", index=0, first=0, stop=1, status="done", worker="h:1")
    assert fanout.help_with(job.pk, "r1") == "skipped"  # nothing left to take
    assert fanout.help_with(job.pk, "r0") == "skipped"  # a message of an earlier split
    done.refresh_from_db()
    assert (done.status, done.worker, done.attempts) == ("done", "h:1", 0)
    Part.objects.filter(pk=done.pk).update(status="queued")
    Job.objects.filter(pk=job.pk).update(status="done")
    assert fanout.help_with(job.pk, "r1") == "skipped"  # the job finished: its parts are no one's
    assert Part.objects.get(pk=done.pk).status == "queued"


def test_sigterm_hands_a_running_part_back_and_the_job_finishes_once(alice_api, start_worker):
    workers = [start_worker(**SLOW), start_worker(**SLOW)]
    job, part = helper_part(submit(alice_api))
    helper = helper_of(workers, part)
    os.kill(helper.proc.pid, signal.SIGTERM)
    handed_back = False
    while (row := Job.objects.get(pk=job.id)).status == "running":
        handed_back = handed_back or Part.objects.filter(pk=part.pk, handbacks=1).exists()
        time.sleep(0.02)
    assert handed_back
    assert helper.proc.wait(60) == 0
    assert (row.status, row.attempts, row.handbacks) == ("done", 1, 0), row.error
    assert "marked for hand-back" in helper.output()
    assert len(media_files("results")) == 1
    assert_nothing_left(job.id)


def test_cancel_stops_every_part_within_a_window_and_retry_starts_again(alice_api, start_worker):
    workers = [start_worker(**SLOW), start_worker(**SLOW)]
    job, _ = helper_part(submit(alice_api))
    assert alice_api.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 200
    cancelled = time.monotonic()
    while Part.objects.filter(job_id=job.id).exists() or media_files("parts"):
        assert time.monotonic() - cancelled < 3, "parts still running"
        time.sleep(0.02)
    time.sleep(1)  # a window later: no helper wrote anything more
    assert media_files("parts") == [] and Job.objects.get(pk=job.id).status == "cancelled"
    assert alice_api.post(f"/api/v1/jobs/{job.id}/retry").status_code == 200
    again = wait_for(job.id, timeout=120)
    assert again.status == "done" and again.attempts == 1 and again.helpers, again.error
    assert_nothing_left(job.id)
    assert all(w.proc.poll() is None for w in workers)


def test_delete_stops_every_part_and_leaves_nothing(alice_api, start_worker):
    start_worker(**SLOW), start_worker(**SLOW)
    job, _ = helper_part(submit(alice_api))
    assert alice_api.delete(f"/api/v1/jobs/{job.id}").status_code == 204
    deleted = time.monotonic()
    while media_files("parts") or media_files("results") or Part.objects.exists():
        assert time.monotonic() - deleted < 3, "parts still running"
        time.sleep(0.02)
    time.sleep(1)
    assert media_files("parts") == [] and media_files("inputs") == []
    assert wait_for(submit(alice_api, 48)).status == "done"  # the workers go on serving


def live_split(alice):
    """A running job split into run "r1": a queued, a running and a done part, beside a stale run's part."""
    job = services.claim(make_job(alice).id)
    Job.objects.filter(pk=job.pk).update(fanout="r1")
    for index, status in enumerate(["queued", "queued", "running", "done"]):
        Part.objects.create(job=job, run="r1", index=index, first=index, stop=index + 1, status=status)
    Part.objects.create(job=job, run="r0", index=0, first=0, stop=1, status="queued")  # an earlier claim's
    return job


def test_metrics_count_the_live_parts(alice, settings):
    from tests.platform.test_metrics import TOKEN, scrape, value

    settings.METRICS_TOKEN = TOKEN
    live_split(alice)
    samples = scrape()
    assert value(samples, "upscale_parts", status="queued") == 2
    assert value(samples, "upscale_parts", status="running") == 1


def test_the_autoscaling_query_counts_queued_parts_as_work(alice):
    import yaml
    from django.db import connection

    from tests.conftest import ROOT

    scaled = next(yaml.safe_load_all((ROOT / "docker/kubernetes/autoscaling.yaml").read_text()))
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    make_job(alice)  # a queued job
    live_split(alice)  # a running job with two parts waiting for a helper
    with connection.cursor() as cursor:
        cursor.execute(query)
        assert cursor.fetchone()[0] == 1 + 1 + 2


def test_the_storage_sweep_removes_part_outputs_no_live_part_names(alice, settings):
    from tests.platform.factories import stored
    from tests.platform.test_storage_sweep import age
    from webapp.jobs.services import sweeper

    settings.JOB_LEASE_SECONDS = 60
    job = live_split(alice)
    live, finished, lost = (stored("parts", b"npz", "npz") for _ in range(3))
    Part.objects.filter(job=job, run="r1", index=3).update(output=live)  # a helper's, for the running job
    done = make_job(alice, "done")
    Part.objects.create(job=done, run="r9", index=0, first=0, stop=1, status="done", output=finished)
    age([live, finished, lost], 61)
    assert sweeper.sweep_storage() == 2  # a finished job's part and one nobody names
    assert [p.name for p in media_files("parts")] == [live.rpartition("/")[2]]
