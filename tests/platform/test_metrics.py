"""GET /metrics: Prometheus text parsed with prometheus-client's own parser; gauges match the rows, counters
written by a real worker process are read by this one, and nobody reads it without the token or an allowed
client address (behind trusted proxies, never the proxy's own)."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import upload_file, wait_for
from tests.platform.factories import make_job
from webapp import metrics
from webapp.jobs import queue
from webapp.jobs.models import Status
from webapp.jobs.services import move

TOKEN = "s3cret-metrics-token"


def scrape(**headers):
    r = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.content.decode())
        for s in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def test_it_is_not_found_when_neither_token_nor_addresses_are_set(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_CIDRS = "", []
    assert Client().get("/metrics").status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Token {TOKEN}", f"Bearer {TOKEN}x", "Bearer "])
def test_it_refuses_without_the_right_bearer_token(token, header):
    assert Client().get("/metrics", HTTP_AUTHORIZATION=header).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "remote, forwarded, allowed",
    [
        ("10.0.0.2", "203.0.113.9", True),  # the client behind the trusted proxy is allowed
        ("10.0.0.2", "198.51.100.1", False),
        ("10.0.0.2", "203.0.113.9, 198.51.100.1", False),  # a forged left-most entry does not help
        ("10.0.0.2", None, False),  # the proxy's own address never counts, though it is in the CIDRs
        ("203.0.113.9", None, True),  # straight from an allowed address
        ("198.51.100.1", "203.0.113.9", False),  # an untrusted peer's X-Forwarded-For is ignored
    ],
)
def test_it_matches_allowed_cidrs_against_the_client_behind_trusted_proxies(
    settings, remote, forwarded, allowed
):
    settings.METRICS_TOKEN = ""
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    settings.METRICS_ALLOWED_CIDRS = ["203.0.113.0/24", "10.0.0.0/8"]
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    r = Client().get("/metrics", REMOTE_ADDR=remote, **extra)
    assert r.status_code == (200 if allowed else 403)


@pytest.mark.django_db
def test_its_gauges_match_the_rows(token, alice):
    now = timezone.now()
    for minutes in (30, 20, 10):
        make_job(alice, created_at=now - timedelta(minutes=minutes))
    make_job(alice, "queued", scale=4, source="compressed")
    make_job(alice, "running", scale=4, variant="jpeg", lease_expires_at=now + timedelta(minutes=1))
    make_job(alice, "running", scale=4, source="compressed", lease_expires_at=now + timedelta(minutes=1))
    make_job(alice, "done")
    queue.broker().delete(queue.QUEUE)
    queue.ring()  # one bell waiting
    samples = scrape()
    assert value(samples, "upscale_jobs", status="queued", scale="2", variant="auto") == 3  # not chosen yet
    assert value(samples, "upscale_jobs", status="queued", scale="4", variant="jpeg") == 1
    assert value(samples, "upscale_jobs", status="running", scale="4", variant="jpeg") == 2
    assert 30 * 60 <= value(samples, "upscale_oldest_queued_job_age_seconds") < 30 * 60 + 30
    assert value(samples, "upscale_broker_queue_length") == queue.length() == 1


@pytest.mark.django_db
def test_it_counts_failures_by_reason_where_the_status_changes(token, alice):
    before = scrape()
    job = make_job(alice, started_at=timezone.now() - timedelta(seconds=3))
    assert move(job.id, [Status.QUEUED], Status.FAILED, reason="storage", error="The disk is full.")
    after = scrape()
    assert (
        value(after, "upscale_job_failures_total", reason="storage")
        == value(before, "upscale_job_failures_total", reason="storage") + 1
    )
    assert (
        value(after, "upscale_jobs_finished_total", status="failed")
        == value(before, "upscale_jobs_finished_total", status="failed") + 1
    )
    assert not move(job.id, [Status.QUEUED], Status.FAILED, reason="storage")  # no change, no count
    assert value(scrape(), "upscale_job_failures_total", reason="storage") == value(
        after, "upscale_job_failures_total", reason="storage"
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_it_reads_what_a_real_worker_recorded(token, alice_api, start_worker, settings):
    before = scrape()
    worker = start_worker()
    heartbeat = metrics.WORKER_KEY + worker.name
    deadline = time.monotonic() + 10
    while not queue.broker().exists(heartbeat):  # its first beat follows the ready signal by moments
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert value(scrape(), "upscale_workers_live") >= 1
    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file(width=40, height=30), "scale": 2}, format="multipart"
    )
    job = wait_for(r.json()["id"])
    assert job.status == "done"
    after = scrape()
    grew = {
        name: value(after, name, **labels) - value(before, name, **labels)
        for name, labels in [
            ("upscale_jobs_finished_total", {"status": "done"}),
            ("upscale_job_run_seconds_count", {"scale": "2"}),
            ("upscale_job_wait_seconds_count", {"scale": "2"}),
            ("upscale_output_megapixels_total", {"scale": "2"}),
        ]
    }
    assert grew == {
        "upscale_jobs_finished_total": 1,
        "upscale_job_run_seconds_count": 1,
        "upscale_job_wait_seconds_count": 1,
        "upscale_output_megapixels_total": pytest.approx(0.0048),
    }
    assert value(after, "upscale_job_run_seconds_sum", scale="2") - value(
        before, "upscale_job_run_seconds_sum", scale="2"
    ) == pytest.approx(job.run_seconds)
    worker.proc.terminate()  # a warm shutdown removes its key at once (a killed worker's expires in 30 s)
    worker.proc.wait(30)
    assert not queue.broker().exists(heartbeat)


@pytest.mark.django_db
def test_the_grafana_dashboard_asks_only_for_series_it_serves(token, alice):
    import json
    import re

    from tests.conftest import ROOT

    started = timezone.now() - timedelta(seconds=2)
    move(make_job(alice, "running", started_at=started).id, [Status.RUNNING], Status.DONE)
    move(make_job(alice, started_at=started).id, [Status.QUEUED], Status.FAILED, reason="engine")
    move(make_job(alice, "running").id, [Status.RUNNING], Status.QUEUED)  # a hand-back
    served = {name for name, _ in scrape()}
    dashboard = json.loads((ROOT / "docker" / "grafana" / "upscaler-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"upscale_[a-z_]+", target["expr"])
    }
    assert len(dashboard["panels"]) >= 8 and asked - served == set()
