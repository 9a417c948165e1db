"""Waiting: queue position and an ETA that covers the wait, expiry, and ``Prefer: wait=N``."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.conftest import upload_file
from tests.platform.factories import make_job
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_queued_jobs_report_their_place_and_an_eta_that_covers_the_wait(alice, bob, alice_api):
    now = timezone.now()
    for seconds in (4, 6):  # the measured throughput: two runs of 4 and 6 s, one worker
        job = make_job(bob, "done", worker="host:1", created_at=now - timedelta(seconds=90))
        Job.objects.filter(pk=job.pk).update(
            started_at=now - timedelta(seconds=60 + seconds), finished_at=now - timedelta(seconds=60)
        )
    queued = [make_job(alice if i != 1 else bob, created_at=now + timedelta(seconds=i)) for i in range(3)]
    mine = [alice_api.get(f"/api/v1/jobs/{queued[i].id}").json() for i in (0, 2)]
    assert [j["queue_position"] for j in mine] == [1, 3]  # bob's job is in the same queue, between them
    assert [j["eta_seconds"] for j in mine] == [5.0, 15.0]  # mean run 5 s, one worker: (position - 1 + 1) x 5
    done = alice_api.get("/api/v1/jobs?status=done").json()["results"]
    assert done == []
    listed = alice_api.get("/api/v1/jobs").json()["results"]
    assert [j["queue_position"] for j in listed] == [3, 1]


def test_a_queued_jobs_eta_takes_each_job_at_the_speed_of_its_own_network(alice, bob, alice_api):
    now = timezone.now()
    for network, seconds in (("edsr", 8), ("rlfn", 2)):  # 500x500 at x2: 1 output MP; 0.125 and 0.5 MP/s
        job = make_job(bob, "done", size=500, network=network, created_at=now - timedelta(seconds=90))
        Job.objects.filter(pk=job.pk).update(
            started_at=now - timedelta(seconds=60 + seconds), finished_at=now - timedelta(seconds=60)
        )
    make_job(bob, size=500, network="edsr", created_at=now)  # ahead: 1 MP at EDSR's speed, 8 s
    mine = make_job(alice, size=1000, network="rlfn", created_at=now + timedelta(seconds=1))  # 4 MP: 8 s
    body = alice_api.get(f"/api/v1/jobs/{mine.id}").json()
    assert body["queue_position"] == 2 and body["eta_seconds"] == 16.0  # the mean run (5 s) would say 10


def test_the_first_job_has_no_eta_until_one_has_run(alice_api):
    job = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart").json()
    assert job["queue_position"] == 1 and job["eta_seconds"] is None


def test_finished_jobs_have_no_place_and_every_job_shows_when_it_expires(alice, alice_api, settings):
    settings.RETENTION_DAYS = 2
    job = make_job(alice, "done")
    got = alice_api.get(f"/api/v1/jobs/{job.id}").json()
    assert got["queue_position"] is None
    assert got["expires_at"] == (job.created_at + timedelta(days=2)).isoformat().replace("+00:00", "Z")


def test_prefer_wait_is_not_applied_to_a_finished_job_and_a_bad_value_is_ignored(alice, alice_api):
    job = make_job(alice, "done")
    r = alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=5")
    assert r.status_code == 200 and "Preference-Applied" not in r and "Prefer" in r["Vary"]
    assert "Preference-Applied" not in alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=soon")


@pytest.mark.django_db(transaction=True)
@override_settings(PREFER_WAIT_MAX=2)
def test_prefer_wait_waits_at_most_the_cap_for_a_job_that_does_not_finish(alice, alice_api):
    import time

    job = make_job(alice)  # no worker: it stays queued
    started = time.monotonic()
    r = alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=60")
    assert 1.8 < time.monotonic() - started < 4
    assert r.json()["status"] == "queued" and r["Preference-Applied"] == "wait=2"


@pytest.mark.django_db(transaction=True)
@override_settings(PREFER_WAIT_SLOTS=0)
def test_prefer_wait_answers_at_once_when_every_slot_is_taken(alice, alice_api):
    import time

    job = make_job(alice)
    started = time.monotonic()
    r = alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=10")
    assert time.monotonic() - started < 1 and "Preference-Applied" not in r


@pytest.mark.django_db(transaction=True)
def test_prefer_wait_answers_a_short_job_when_it_is_done(alice_api, worker):
    r = alice_api.post(
        "/api/v1/jobs",
        {"image": upload_file(width=16, height=12), "scale": 2},
        format="multipart",
        HTTP_PREFER="respond-async, wait=20",
    )
    assert r.status_code == 201 and r["Preference-Applied"] == "wait=20"
    assert r.json()["status"] == "done" and r.json()["result_url"]


@pytest.mark.django_db(transaction=True)
def test_prefer_wait_caps_derive_from_the_web_servers_threads(settings):
    assert settings.WEB_THREADS == 4
    assert settings.PREFER_WAIT_SLOTS == 2 and settings.PREFER_WAIT_PER_USER == 2


@pytest.mark.django_db(transaction=True)
@override_settings(PREFER_WAIT_MAX=2)
def test_prefer_wait_answers_at_once_when_the_user_already_waits_in_other_processes(alice, alice_api):
    import time

    from webapp import ratelimit
    from webapp.integrations.prefer_wait import _user_key

    job = make_job(alice)
    key = _user_key(alice)
    # Two places held elsewhere (their deadlines ahead) and one left behind by a killed process (long past).
    ratelimit.connection().zadd(
        key, {"p1": time.time() + 30, "p2": time.time() + 30, "dead": time.time() - 1}
    )
    started = time.monotonic()
    r = alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=2")
    assert time.monotonic() - started < 1 and "Preference-Applied" not in r
    ratelimit.connection().zrem(key, "p1")
    r = alice_api.get(f"/api/v1/jobs/{job.id}", HTTP_PREFER="wait=2")
    assert r["Preference-Applied"] == "wait=2"  # the dead place freed itself
    assert ratelimit.connection().zrange(key, 0, -1) == [b"p2"]  # and the request gave its own back
