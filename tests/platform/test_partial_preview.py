"""The result while it is made, with real worker processes: a job with several windows stores a partial
preview (the windows done so far) before its result, served to its owner only while it runs, and removed
when the job ends or is cancelled; a job in parts gets one from its coordinator."""

import time

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from tests.conftest import media_files
from tests.platform.test_fanout import submit
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
# 300x300 x2 with 128-pixel windows: 9 windows, one every 0.3 s at least; a preview every 0.2 s.
SLOW = {
    "UPSCALE_TILE": "128",
    "UPSCALE_WINDOW_AREA": "0",
    "TEST_TILE_DELAY": "0.3",
    "PARTIAL_PREVIEW_INTERVAL": "0.2",
}
WHOLE = {**SLOW, "FANOUT_MIN_MEGAPIXELS": "1000"}
IN_PARTS = {**SLOW, "FANOUT_MIN_MEGAPIXELS": "0.01", "FANOUT_MAX_PARTS": "3"}


def first_partial(job_id, timeout=60):
    """The first partial preview's storage name, read while the job runs, once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.partial_preview and default_storage.exists(job.partial_preview.name):
            return job
        assert job.status in ("queued", "running") and time.monotonic() < deadline, (job.status, job.error)
        time.sleep(0.02)


@pytest.mark.parametrize("settings_, workers", [(WHOLE, 1), (IN_PARTS, 2)], ids=["whole", "in-parts"])
def test_it_stores_a_partial_preview_while_the_job_runs_and_removes_it_at_the_end(
    alice_api, alice_web, start_worker, settings_, workers
):
    for _ in range(workers):
        start_worker(**settings_)
    job_id = submit(alice_api, 300)
    job = first_partial(job_id)
    assert job.status == "running" and not job.result_file  # before the result
    with default_storage.open(job.partial_preview.name, "rb") as f, Image.open(f) as im:
        assert (im.format, im.size) == ("JPEG", (600, 600))  # the result's shape, under PREVIEW_SIZE

    status = alice_web.get(f"/jobs/{job_id}/status").json()
    if status["status"] == "running" and status["partial_url"]:
        r = alice_web.get(status["partial_url"])
        assert r.status_code in (200, 404)  # 404: replaced by a newer one between the two requests
        if r.status_code == 200:
            assert r["Content-Type"] == "image/jpeg"

    written, deadline = {job.partial_preview.name}, time.monotonic() + 60
    while (done := Job.objects.get(pk=job_id)).status in ("queued", "running"):
        assert time.monotonic() < deadline, "the job did not finish"
        written.add(done.partial_preview.name)
        time.sleep(0.02)
    assert done.status == "done", done.error
    assert done.partial_preview.name == ""
    assert not any(default_storage.exists(name) for name in written - {""})  # every one removed
    assert alice_web.get(f"/jobs/{job_id}/status").json()["partial_url"] is None
    assert alice_web.get(f"/jobs/{job_id}/partial-preview").status_code == 404


def test_it_serves_the_partial_preview_to_its_owner_only(alice_api, bob, client, start_worker):
    start_worker(**WHOLE)
    job_id = submit(alice_api, 300)
    first_partial(job_id)
    client.force_login(bob)
    assert client.get(f"/jobs/{job_id}/partial-preview").status_code == 404
    assert client.get(f"/jobs/{job_id}/status").status_code == 404


def test_cancelling_a_running_job_removes_its_partial_preview(alice, alice_api, start_worker):
    from webapp.jobs.services import web

    start_worker(**WHOLE)
    job_id = submit(alice_api, 300)
    job = first_partial(job_id)
    assert web.cancel(job)
    assert Job.objects.get(pk=job_id).partial_preview.name == ""
    assert not default_storage.exists(job.partial_preview.name)
    deadline = time.monotonic() + 30  # the worker stops at its next window and removes what it wrote
    while media_files("previews") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert media_files("previews") == []
    assert Job.objects.get(pk=job_id).partial_preview.name == ""


def test_a_new_claim_removes_the_partial_preview_a_killed_attempt_left(alice):
    from django.utils import timezone

    from tests.platform.factories import make_job, stored
    from webapp.jobs.services import worker as services

    left = stored("previews", b"a partial preview", "jpg")
    job = make_job(alice, "running", attempts=1, partial_preview=left, lease_expires_at=timezone.now())
    assert services.claim(job.pk) is not None
    assert Job.objects.get(pk=job.pk).partial_preview.name == ""
    assert not default_storage.exists(left)


def test_the_coordinator_reads_each_done_helper_part_once_for_the_preview(alice):
    import io

    import numpy as np
    from django.core.files.base import ContentFile

    from tests.platform.factories import make_job
    from webapp.jobs.models import Part
    from webapp.jobs.services import fanout

    job = make_job(alice, "running", attempts=1, fanout="run1")
    windows = {3: np.full((4, 5, 3), 7, np.uint8), 4: np.zeros((4, 5, 3), np.uint8)}
    buf = io.BytesIO()
    np.savez(buf, **{str(i): w for i, w in windows.items()})
    name = default_storage.save("parts/helper.npz", ContentFile(buf.getvalue()))
    Part.objects.create(job=job, run="run1", index=1, first=3, stop=5, status="done", output=name)
    Part.objects.create(job=job, run="run1", index=2, first=5, stop=7, status="running", output="")

    seen = set()
    got = dict(fanout.helper_windows("run1", seen))
    assert sorted(got) == [3, 4] and np.array_equal(got[3], windows[3])
    assert seen == {name}
    assert list(fanout.helper_windows("run1", seen)) == []  # read once
