"""Status changes, claims, the sweeper, retention and quotas (no worker: the rows are driven directly)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import image_bytes, media_files, upload_file
from tests.platform.factories import make_job, stored
from upscale_worker.engine import previews
from webapp.jobs import queue, services
from webapp.jobs.models import Job
from webapp.jobs.services import sweeper, worker

pytestmark = pytest.mark.django_db


def test_it_moves_a_status_only_from_the_given_ones(alice):
    job = make_job(alice, "done")
    assert not services.move(job.id, ["queued", "running"], "cancelled")
    assert services.move(job.id, ["done"], "failed", error="x")
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at


def test_it_claims_a_queued_job_once(alice):
    job = make_job(alice)
    claimed = worker.claim(job.id)
    assert claimed.status == "running" and claimed.attempts == 1 and claimed.lease_expires_at > timezone.now()
    assert worker.claim(job.id) is None


def test_it_reclaims_a_running_job_whose_lease_expired(alice):
    job = make_job(
        alice,
        "running",
        attempts=1,
        worker="elsewhere:1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert worker.claim(job.id).attempts == 2


def test_it_reclaims_at_once_when_the_workers_process_is_dead(alice):
    import socket

    job = make_job(
        alice,
        "running",
        attempts=1,
        worker=f"{socket.gethostname()}:999999",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    claimed = worker.claim_next()
    assert (claimed.id, claimed.attempts) == (job.id, 2)


@pytest.mark.parametrize("attempts", [1, "max"])
def test_a_claim_removes_what_a_killed_attempt_stored_before_it_could_finish(alice, settings, attempts):
    attempts = settings.JOB_MAX_ATTEMPTS if attempts == "max" else attempts
    left = [stored("results", image_bytes(32, 32)), stored("previews", image_bytes(8, 8, "WEBP"), "webp")]
    job = make_job(
        alice,
        "running",
        attempts=attempts,
        worker="elsewhere:1",
        attempt_files=left,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    claimed = worker.claim(job.id)  # the next attempt, or the give-up after the last one
    assert media_files("results") == [] and media_files("previews") == []
    job.refresh_from_db()
    assert job.attempt_files == [] and job.status == ("running" if claimed else "failed")


def test_it_leaves_a_running_job_with_a_live_lease_alone(alice):
    job = make_job(
        alice,
        "running",
        attempts=1,
        worker="elsewhere:1",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert worker.claim(job.id) is None


def test_it_fails_a_job_after_too_many_attempts(alice, settings):
    job = make_job(
        alice,
        "running",
        attempts=settings.JOB_MAX_ATTEMPTS,
        worker="elsewhere:1",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert worker.claim(job.id) is None
    job.refresh_from_db()
    assert job.status == "failed" and "times" in job.error


def test_it_never_claims_a_finished_job(alice):
    for status in ("done", "failed", "cancelled"):
        assert worker.claim(make_job(alice, status).id) is None


def test_the_sweeper_republishes_lost_jobs(alice, settings):
    queue.broker().delete(queue.QUEUE)
    never_published = make_job(alice)
    stale = make_job(alice, published_at=timezone.now() - timedelta(seconds=settings.REPUBLISH_AFTER + 1))
    make_job(alice, published_at=timezone.now())
    queue.ring()  # the fresh one's own bell
    dead = make_job(alice, "running", lease_expires_at=timezone.now() - timedelta(seconds=1))
    make_job(alice, "running", lease_expires_at=timezone.now() + timedelta(minutes=1))
    make_job(alice, "done")
    assert sweeper.sweep() == 3
    for job in (never_published, stale, dead):
        job.refresh_from_db()
        assert job.published_at > timezone.now() - timedelta(seconds=5)
    assert sweeper.sweep() == 0  # a bell waits for each claimable job now: nothing is rung twice
    assert queue.length() == 4


def test_it_expires_old_files_and_keeps_the_row(alice, settings):
    settings.RETENTION_DAYS = 7
    old = make_job(alice, "done", created_at=timezone.now() - timedelta(days=8))
    new = make_job(alice, "done")
    running = make_job(alice, "running", created_at=timezone.now() - timedelta(days=8))
    before = len(media_files())
    assert sweeper.expire() == 1
    assert len(media_files()) == before - 3  # input, result and the (shared) previews of the old job
    old.refresh_from_db()
    assert old.expired_at and not old.result_file and not old.input_file and old.status == "done"
    assert Job.objects.get(pk=new.pk).result_file and Job.objects.get(pk=running.pk).input_file


def test_it_shows_an_expired_job_without_files(alice, alice_web):
    job = make_job(alice, "done", expired_at=timezone.now())
    job.result_file = job.input_file = job.result_preview = ""
    job.save()
    page = alice_web.get(f"/jobs/{job.id}").content.decode()
    assert "expired" in page and "Download" not in page
    assert alice_web.get(f"/jobs/{job.id}/result").status_code == 404


def post(api):
    return api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")


def test_it_limits_queued_jobs_per_user(alice, alice_api, bob_api, settings):
    settings.MAX_QUEUED_JOBS_PER_USER = 2
    make_job(alice), make_job(alice, "running"), make_job(alice, "done")
    r = post(alice_api)
    assert r.status_code == 429 and "2 jobs waiting" in r.json()["detail"]
    assert r.json()["reason"] == "active_jobs" and "Retry-After" not in r
    assert post(bob_api).status_code == 201


def test_it_limits_megapixels_per_day(alice, alice_api, settings):
    settings.MEGAPIXELS_PER_DAY = 0.01  # a 48x48 job at x2 makes 0.0092 MP
    assert post(alice_api).status_code == 201
    r = post(alice_api)
    assert r.status_code == 429 and "daily limit" in r.json()["detail"]
    assert r.json()["reason"] == "daily_megapixels"
    assert 86400 - 60 < int(r["Retry-After"]) <= 86400  # when the first job leaves the 24-hour window


def test_it_says_when_the_daily_megapixels_free_up_from_the_oldest_job_that_must_leave(
    alice, alice_api, settings
):
    settings.MEGAPIXELS_PER_DAY = (
        0.02  # three 48x48 x2 jobs (0.0092 MP each) of which the next needs one gone
    )
    now = timezone.now()
    for hours_ago in (20, 10, 5):
        make_job(alice, "done", size=48, created_at=now - timedelta(hours=hours_ago))
    r = post(alice_api)
    assert r.status_code == 429 and r.json()["reason"] == "daily_megapixels"
    assert abs(int(r["Retry-After"]) - 14 * 3600) <= 60  # (0.0276 + 0.0092 - 0.02) needs the two oldest gone


def test_it_gives_no_retry_after_when_one_upload_exceeds_the_daily_megapixels(alice_api, settings):
    settings.MEGAPIXELS_PER_DAY = 0.001
    r = post(alice_api)
    assert r.status_code == 429 and r.json()["reason"] == "daily_megapixels" and "Retry-After" not in r


def test_it_bounds_storage_per_user(alice, alice_api, settings):
    make_job(alice, "done")
    settings.USER_STORAGE_MB = 0.000001
    r = post(alice_api)
    assert r.status_code == 429 and "storage is full" in r.json()["detail"]
    assert r.json()["reason"] == "storage" and "Retry-After" not in r
    assert media_files("inputs") == [media_files("inputs")[0]]


def test_time_limits_are_below_the_redis_visibility_timeout(settings):
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT < visibility
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


@pytest.mark.parametrize(("channels", "ext"), [(3, "jpg"), (4, "webp")])
def test_the_result_preview_from_the_engines_pixels_matches_one_from_the_decoded_file(channels, ext):
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:300, 0:500]
    img = np.dstack([x % 256, y % 256, (x + y) % 256, 128 + y % 128][:channels]).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(img).save(png, "PNG")
    png.seek(0)
    [(decoded_ext, decoded)] = previews.input_previews(png, 500, [128])
    made_ext, made = previews.pixels_preview(img[..., :3], img[..., 3] if channels == 4 else None, 128)
    assert made_ext == decoded_ext == ext
    with Image.open(io.BytesIO(made)) as a, Image.open(io.BytesIO(decoded)) as b:
        assert a.size == b.size == (128, 77) and a.mode == b.mode
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean() < 3


def test_a_16_bit_result_gets_an_8_bit_preview():
    import io

    import numpy as np
    from PIL import Image

    rgb = np.full((40, 60, 3), 257 * 200, np.uint16)
    ext, content = previews.pixels_preview(rgb, None, 30)
    with Image.open(io.BytesIO(content)) as im:
        assert ext == "jpg" and im.size == (30, 20) and abs(int(np.asarray(im).mean()) - 200) <= 1


@pytest.mark.parametrize("alpha", [False, True])
def test_the_previews_of_a_16_bit_grey_png_are_grey_not_white(alpha):
    import io

    import cv2
    import numpy as np
    from PIL import Image

    grey = np.full((30, 40), 30000, np.uint16)  # 117 in 8 bits
    data = cv2.imencode(".png", np.dstack([grey, grey, grey, grey]) if alpha else grey)[1].tobytes()
    for ext, content in previews.input_previews(io.BytesIO(data), 40, [32, 16]):
        with Image.open(io.BytesIO(content)) as im:
            assert abs(np.asarray(im.convert("RGB")).mean() - 117) <= 1, ext


def test_progress_is_throttled_but_the_first_window_brings_an_eta_at_once(alice, settings):
    settings.JOB_PROGRESS_INTERVAL = 60
    job = make_job(alice, status="running", attempts=1, started_at=timezone.now())
    reporter = worker.Reporter(job)
    reporter.progress(0, 8)
    job.refresh_from_db()
    assert (job.progress, job.eta_seconds) == (0, None)
    reporter.progress(1, 8)  # within the interval, but the page needs an ETA to poll at
    job.refresh_from_db()
    assert job.progress == pytest.approx(99 / 8, abs=0.1) and job.eta_seconds is not None
    assert isinstance(job.eta_seconds, float)  # in tenths: a short job is polled when it should end
    reporter.progress(2, 8)  # throttled
    job.refresh_from_db()
    assert job.progress == pytest.approx(99 / 8, abs=0.1)
    reporter.progress(8, 8)  # the last window always
    job.refresh_from_db()
    assert job.progress == 99 and job.eta_seconds == 0.0


def test_a_rate_limit_window_runs_from_its_first_hit():
    """Not from the clock's minute: a burst straddling a minute boundary would otherwise pass twice."""
    import time

    from webapp.ratelimit import allow

    assert [allow("burst", 2, period=1) for _ in range(3)] == [True, True, False]
    time.sleep(1.1)
    assert allow("burst", 2, period=1)


def test_the_input_preview_of_a_cmyk_photo_goes_through_its_profile():
    import io

    import numpy as np
    from PIL import Image, ImageCms

    from tests.odd_images import cmyk_profile

    buf = io.BytesIO()
    Image.new("CMYK", (40, 30), (40, 120, 30, 50)).save(buf, "JPEG", icc_profile=cmyk_profile(), quality=100)
    managed = ImageCms.profileToProfile(
        Image.open(buf),
        ImageCms.ImageCmsProfile(io.BytesIO(cmyk_profile())),
        ImageCms.createProfile("sRGB"),
        outputMode="RGB",
    ).getpixel((5, 5))
    buf.seek(0)
    [(ext, content)] = previews.input_previews(buf, 40, [16])
    shown = Image.open(io.BytesIO(content)).getpixel((3, 3))
    assert ext == "jpg" and np.abs(np.subtract(shown, managed)).max() <= 3
