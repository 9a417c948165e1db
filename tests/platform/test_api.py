"""The HTTP contract of /api/v1 (no worker needed: jobs stay queued)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import image_bytes, upload_file
from tests.platform.factories import make_job
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def post_job(client, **data):
    data.setdefault("image", upload_file())
    data.setdefault("scale", 2)
    return client.post("/api/v1/jobs", data, format="multipart")


def test_it_registers_and_returns_a_token():
    r = APIClient().post(
        "/api/v1/auth/register", {"username": "carol", "password": "a-long-secret-7"}, format="json"
    )
    assert r.status_code == 201 and len(r.json()["token"]) == 40


@override_settings(SIGNUP_OPEN=False)
def test_it_refuses_registration_when_signup_is_closed():
    r = APIClient().post("/api/v1/auth/register", {"username": "carol", "password": "a-long-secret-7"})
    assert r.status_code == 403


def test_it_refuses_a_taken_username(alice):
    r = APIClient().post("/api/v1/auth/register", {"username": "Alice", "password": "a-long-secret-7"})
    assert r.status_code == 400 and "username" in r.json()


@pytest.mark.parametrize(
    "username, password, field",
    [
        ("<img src=x onerror=alert(1)>", "a-long-secret-7", "username"),
        ("has space", "a-long-secret-7", "username"),
        ("dave", "short", "password"),
        ("dave", "password123", "password"),  # a common password
        ("davidsmith", "davidsmith1", "password"),  # too like the username
    ],
)
def test_registration_applies_the_sign_up_forms_rules(username, password, field):
    from django.contrib.auth.forms import UserCreationForm

    form = UserCreationForm({"username": username, "password1": password, "password2": password})
    assert not form.is_valid()  # the site's form refuses it too
    r = APIClient().post("/api/v1/auth/register", {"username": username, "password": password}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid" and r.json()[field], r.json()
    assert r.json()["detail"].startswith(f"{field}: ")
    assert not get_user_model().objects.filter(username=username).exists()


def test_it_gives_a_token_for_form_or_json_credentials(alice):
    a = APIClient().post("/api/v1/auth/token", {"username": "alice", "password": "a-long-secret-7"})
    b = APIClient().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "a-long-secret-7"}, format="json"
    )
    assert a.status_code == b.status_code == 200 and a.json()["token"] == b.json()["token"]


def test_it_refuses_a_wrong_password(alice):
    r = APIClient().post("/api/v1/auth/token", {"username": "alice", "password": "nope"})
    assert r.status_code == 400 and r.json()["detail"]


def test_it_creates_a_job(alice_api):
    r = post_job(alice_api, format="webp", quality=80, keep_metadata="true")
    assert r.status_code == 201
    job = r.json()
    for key in (
        "id",
        "status",
        "progress",
        "eta_seconds",
        "scale",
        "input_width",
        "input_height",
        "output_width",
        "output_height",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "result_url",
    ):
        assert key in job
    assert job["status"] == "queued" and job["scale"] == 2 and job["input_width"] == 48
    assert job["result_url"] is None and job["error"] is None and job["eta_seconds"] is None
    row = Job.objects.get(pk=job["id"])
    assert (row.format, row.quality, row.keep_metadata) == ("webp", 80, True)


def test_it_accepts_paths_with_a_trailing_slash(alice_api):
    assert alice_api.post("/api/v1/jobs/", {"image": upload_file(), "scale": 2}).status_code == 201
    assert alice_api.get("/api/v1/jobs/").status_code == 200


def test_it_accepts_a_png_named_jpg(alice_api):
    assert post_job(alice_api, image=upload_file("photo.jpg")).status_code == 201


@pytest.mark.parametrize(
    "data,field",
    [
        ({"scale": 5}, "scale"),
        ({"format": "gif"}, "format"),
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
    ],
)
def test_it_refuses_bad_options_per_field(alice_api, data, field):
    r = post_job(alice_api, **data)
    assert r.status_code == 400 and field in r.json()


def test_it_refuses_a_missing_image(alice_api):
    r = alice_api.post("/api/v1/jobs", {"scale": 2})
    assert r.status_code == 400 and "image" in r.json()


def test_it_refuses_a_scale_without_a_model(alice_api, settings, tmp_path):
    (tmp_path / "manifest.json").write_text('{"models": [{"scale": 2}]}')
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    r = post_job(alice_api, scale=4)
    assert r.status_code == 400 and "x4 is not available" in r.json()["detail"]


def test_it_lists_newest_first_with_a_status_filter(alice, alice_api):
    old = make_job(alice, "done")
    new = make_job(alice)
    body = alice_api.get("/api/v1/jobs").json()
    assert [j["id"] for j in body["results"]] == [str(new.id), str(old.id)]
    assert set(body) >= {"count", "next", "previous", "results"}
    done = alice_api.get("/api/v1/jobs?status=done").json()
    assert [j["id"] for j in done["results"]] == [str(old.id)]


def test_it_paginates(alice, alice_api):
    for _ in range(21):
        make_job(alice)
    body = alice_api.get("/api/v1/jobs").json()
    assert body["count"] == 21 and len(body["results"]) == 20 and body["next"]


def test_it_cancels_a_queued_job(alice, alice_api):
    job = make_job(alice)
    r = alice_api.post(f"/api/v1/jobs/{job.id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_it_says_a_finished_job_cannot_be_cancelled(alice, alice_api):
    job = make_job(alice, "done")
    assert alice_api.post(f"/api/v1/jobs/{job.id}/cancel").status_code == 409


def test_it_retries_a_failed_job(alice, alice_api):
    job = make_job(alice, "failed", error="Boom.", attempts=3)
    r = alice_api.post(f"/api/v1/jobs/{job.id}/retry")
    assert r.status_code == 200 and r.json()["status"] == "queued" and r.json()["error"] is None
    job.refresh_from_db()
    assert job.attempts == 0


def test_it_deletes_a_job_and_its_files(alice, alice_api):
    from tests.conftest import media_files

    job = make_job(alice, "done")
    assert media_files()
    assert alice_api.delete(f"/api/v1/jobs/{job.id}").status_code == 204
    assert not Job.objects.filter(pk=job.id).exists()
    assert media_files() == []


def test_it_downloads_the_result_with_its_content_type(alice, alice_api):
    job = make_job(alice, "done")
    r = alice_api.get(f"/api/v1/jobs/{job.id}/result")
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in r["Content-Disposition"]
    assert (
        alice_api.get(f"/api/v1/jobs/{job.id}").json()["result_url"].endswith(f"/api/v1/jobs/{job.id}/result")
    )


def test_it_has_no_result_before_the_job_is_done(alice, alice_api):
    job = make_job(alice)
    assert alice_api.get(f"/api/v1/jobs/{job.id}/result").status_code == 404


def test_it_answers_404_for_a_malformed_id(alice_api):
    assert alice_api.get("/api/v1/jobs/not-a-uuid").status_code == 404


def test_it_works_with_a_session_login(client, alice):
    client.force_login(alice)
    assert client.get("/api/v1/jobs").status_code == 200


def test_it_serves_the_openapi_schema(client):
    r = client.get("/api/v1/schema")
    assert r.status_code == 200 and b"/api/v1/jobs" in r.content


def test_it_answers_413_before_reading_a_large_body(alice_api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    r = post_job(alice_api, image=upload_file(data=image_bytes(200, 200)))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    assert not Job.objects.exists()


def test_it_rate_limits_uploads(alice_api, settings):
    settings.UPLOADS_PER_MINUTE = 2
    responses = [post_job(alice_api) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 429]
    assert responses[2].json()["reason"] == "rate_limited" and 1 <= int(responses[2]["Retry-After"]) <= 60


def test_it_rate_limits_token_requests(alice, settings):
    settings.LOGINS_PER_MINUTE = 2
    api = APIClient()
    codes = [
        api.post("/api/v1/auth/token", {"username": "alice", "password": "x"}).status_code for _ in range(3)
    ]
    assert codes == [400, 400, 429]


@pytest.mark.django_db(transaction=True)
def test_the_queued_jobs_quota_holds_under_concurrent_uploads(alice, settings):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.conftest import token_client

    settings.MAX_QUEUED_JOBS_PER_USER = 5
    data = image_bytes(16, 16)
    start = threading.Barrier(12)

    def upload(_):
        try:
            client = token_client(alice)
            start.wait()
            return post_job(client, image=upload_file(data=data)).status_code
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(upload, range(12)))
    assert sorted(codes) == [201] * 5 + [429] * 7
    assert Job.objects.filter(owner=alice).count() == 5
