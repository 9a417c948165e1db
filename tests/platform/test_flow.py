"""The whole flow through a real Celery worker: upload -> queued -> running -> done."""

import pytest
from PIL import Image

from tests.conftest import media_files, upload_file, wait_for
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_it_upscales_an_upload_end_to_end(alice_api):
    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file(width=48, height=40), "scale": 2}, format="multipart"
    )
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "queued"

    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    assert (job.output_width, job.output_height) == (96, 80)
    assert job.attempts == 1 and job.progress == 100 and job.worker

    r = alice_api.get(f"/api/v1/jobs/{job.id}/result")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/png"
    assert r["X-Content-Type-Options"] == "nosniff"
    with Image.open(__import__("io").BytesIO(b"".join(r.streaming_content))) as im:
        assert im.size == (96, 80)
    assert len(media_files("results")) == 1


def test_it_shows_the_job_page_and_status_json(alice_web):
    r = alice_web.post("/upload", {"image": upload_file(), "scale": 2})
    job = Job.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.id}"
    job = wait_for(job.id)
    status = alice_web.get(f"/jobs/{job.id}/status").json()
    assert status["status"] == "done" and status["progress"] == 100 and status["result_url"]
    page = alice_web.get(f"/jobs/{job.id}").content.decode()
    assert 'id="slider"' in page and "Download" in page
    for kind in ("result", "input-preview", "result-preview", "thumbnail"):
        r = alice_web.get(f"/jobs/{job.id}/{kind}")
        assert r.status_code == 200 and r["X-Content-Type-Options"] == "nosniff", kind


def test_it_does_not_run_a_done_job_twice(alice_api):
    from webapp.jobs import queue

    r = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")
    job = wait_for(r.json()["id"])
    finished = job.finished_at
    assert queue.ring()  # a surplus bell: no job is claimable
    sentinel = wait_for(
        alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart").json()["id"]
    )
    assert sentinel.status == "done"  # the worker has handled the duplicate by now
    job.refresh_from_db()
    assert job.attempts == 1 and job.finished_at == finished
    assert len(media_files("results")) == 2


def test_it_stops_a_running_job_when_cancelled(alice_api):
    import time

    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file(width=512, height=512), "scale": 2}, format="multipart"
    )
    job = wait_for(r.json()["id"], ("running",))
    while Job.objects.get(pk=job.id).progress == 0:
        time.sleep(0.05)
    running = alice_api.get(f"/api/v1/jobs/{job.id}").json()
    assert 0 < running["progress"] < 100 and isinstance(running["eta_seconds"], float)
    assert alice_api.post(f"/api/v1/jobs/{job.id}/cancel").json()["status"] == "cancelled"
    started = time.monotonic()
    small = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart").json()
    assert wait_for(small["id"], timeout=30).status == "done"
    assert time.monotonic() - started < 5  # the worker dropped the big job between two tiles
    job.refresh_from_db()
    assert job.status == "cancelled" and not job.result_file
    assert len(media_files("results")) == 1
