"""Safe retries with Idempotency-Key on POST /api/v1/jobs and /api/v1/batches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import image_bytes, media_files, upload_file
from webapp.integrations import idempotency
from webapp.integrations.models import Batch, IdempotencyKey
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def post_job(client, key, data=None, **fields):
    return client.post(
        "/api/v1/jobs",
        {"image": upload_file(data=data), "scale": 2, **fields},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def test_a_retry_with_the_same_key_replays_the_first_answer_and_creates_nothing(alice_api):
    first = post_job(alice_api, "k-1")
    again = post_job(alice_api, "k-1")  # another multipart boundary, the same fields and file
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1 and len(media_files("inputs")) == 1


def test_the_same_key_with_another_request_answers_422(alice_api):
    assert post_job(alice_api, "k-2").status_code == 201
    for changed in (
        post_job(alice_api, "k-2", scale=3),
        post_job(alice_api, "k-2", data=image_bytes(30, 30)),
    ):
        assert changed.status_code == 422 and changed.json()["code"] == "idempotency_mismatch"
    assert Job.objects.count() == 1


def test_a_retry_while_the_first_is_in_flight_answers_409(alice, alice_api):
    # What the first request leaves while it runs: the key's row, committed before anything is stored.
    row, answer = idempotency.begin(alice, "k-3", _fingerprint())
    assert answer is None and row.status_code is None
    r = post_job(alice_api, "k-3")
    assert r.status_code == 409 and r.json()["code"] == "idempotency_in_flight"
    assert not Job.objects.exists()


def _fingerprint():
    """The fingerprint of post_job(client, ...), computed by the server's own function."""
    from rest_framework.parsers import MultiPartParser
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    raw = APIRequestFactory().post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")
    return idempotency.fingerprint(Request(raw, parsers=[MultiPartParser()]))


def test_a_refusal_is_replayed_too_but_a_server_error_is_not_kept(alice_api, monkeypatch):
    bad = post_job(alice_api, "k-4", data=b"not an image")
    assert bad.status_code == 400 and post_job(alice_api, "k-4", data=b"not an image").json() == bad.json()

    from webapp.jobs.services import web

    def broken(*args, **kwargs):
        raise RuntimeError("storage down")

    monkeypatch.setattr(web, "submit", broken)
    with pytest.raises(RuntimeError):
        post_job(alice_api, "k-5")
    assert not IdempotencyKey.objects.filter(key="k-5").exists()  # the client may retry
    monkeypatch.undo()
    assert post_job(alice_api, "k-5").status_code == 201


@pytest.mark.parametrize("status", [429, 503])
def test_a_refusal_that_may_pass_later_is_not_replayed(alice_api, monkeypatch, status):
    from webapp.jobs.services import web

    real = web.submit

    def refused(*args, **kwargs):
        raise web.Refused(
            "Your storage is full; delete some jobs first.", status, "quota_exceeded", "storage", 5
        )

    monkeypatch.setattr(web, "submit", refused)
    first = post_job(alice_api, "k-6")
    assert first.status_code == status and first["Retry-After"] == "5"
    assert not IdempotencyKey.objects.filter(key="k-6").exists()
    monkeypatch.setattr(web, "submit", real)  # the quota frees
    again = post_job(alice_api, "k-6")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert post_job(alice_api, "k-6").json() == again.json()  # and the success is kept


def test_a_real_quota_refusal_is_not_replayed_once_the_quota_frees(alice, alice_api, settings):
    from tests.platform.factories import make_job

    settings.MAX_QUEUED_JOBS_PER_USER = 1
    waiting = make_job(alice)
    refused = post_job(alice_api, "k-7")
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    waiting.delete()
    assert post_job(alice_api, "k-7").status_code == 201


def test_keys_are_per_user_and_expire_after_a_day(alice_api, bob_api):
    mine = post_job(alice_api, "shared")
    theirs = post_job(bob_api, "shared")
    assert (
        theirs.status_code == 201 and theirs.json()["id"] != mine.json()["id"]
    )  # never another user's answer
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    later = post_job(alice_api, "shared")
    assert later.status_code == 201 and later.json()["id"] != mine.json()["id"]


def test_it_refuses_an_overlong_key(alice_api):
    r = post_job(alice_api, "x" * 256)
    assert r.status_code == 400 and not Job.objects.exists()


def test_a_batch_is_idempotent_too(alice_api):
    def post():
        return alice_api.post(
            "/api/v1/batches",
            {"image": [upload_file("a.png"), upload_file("b.png")], "scale": 2},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="batch-1",
        )

    first, again = post(), post()
    assert first.status_code == again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert Batch.objects.count() == 1 and Job.objects.count() == 2
