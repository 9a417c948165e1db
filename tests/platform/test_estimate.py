"""GET /api/v1/estimate: the output size, the limits and the wait, before uploading anything."""

from datetime import timedelta

import pytest

from tests.platform.factories import make_job

pytestmark = pytest.mark.django_db


def ran(owner, size, seconds, scale=2, model="edsr_baseline_x2"):
    """A done job whose worker took ``seconds`` for a ``size`` x ``size`` input."""
    job = make_job(owner, "done", size=size, scale=scale, model=model)
    job.started_at = job.finished_at - timedelta(seconds=seconds)
    job.save()
    return job


def test_it_estimates_the_run_from_the_speed_measured_on_recent_jobs(alice, alice_api):
    ran(alice, 500, 4)  # 1 output megapixel (500x500 at x2) in 4 s, then 1 in 6 s: 0.2 MP/s
    ran(alice, 500, 6)
    r = alice_api.get("/api/v1/estimate", {"width": 1000, "height": 500, "scale": 2})
    assert r.status_code == 200
    body = r.json()
    assert (body["output_width"], body["output_height"], body["output_megapixels"]) == (2000, 1000, 2.0)
    assert body["megapixels_per_second"] == 0.2 and body["measured_jobs"] == 2
    assert body["run_seconds"] == 10.0 and body["wait_seconds"] == 0 and body["total_seconds"] == 10.0
    assert body["too_large"] is None


def test_the_wait_counts_the_work_already_queued(alice, bob, alice_api):
    ran(alice, 500, 5)  # 0.2 MP/s
    make_job(bob, "queued", size=500)  # 1 MP ahead: 5 s
    make_job(bob, "running", size=500, progress=50)  # half of 1 MP left: 2.5 s
    body = alice_api.get("/api/v1/estimate", {"width": 500, "height": 500, "scale": 2}).json()
    assert body["queued_jobs"] == 2 and body["wait_seconds"] == 7.5 and body["total_seconds"] == 12.5


def test_it_says_nothing_of_time_before_any_job_ran_but_still_the_size(alice_api):
    body = alice_api.get("/api/v1/estimate", {"width": 10, "height": 20, "scale": 2}).json()
    assert body["run_seconds"] is None and body["total_seconds"] is None and body["output_width"] == 20


def test_it_measures_only_the_network_asked_for(alice, alice_api):
    ran(alice, 500, 5, model="edsr_baseline_x2")
    ran(alice, 500, 50, model="other_net_x2")
    body = alice_api.get(
        "/api/v1/estimate", {"width": 500, "height": 500, "scale": 2, "network": "edsr"}
    ).json()
    assert body["measured_jobs"] == 1 and body["run_seconds"] == 5.0


def test_it_says_why_a_size_would_be_refused(alice_api, settings):
    settings.MAX_OUTPUT_MEGAPIXELS = 100
    body = alice_api.get("/api/v1/estimate", {"width": 4000, "height": 3000, "scale": 4}).json()
    assert "192.0 megapixels" in body["too_large"] and "x2" in body["too_large"]


@pytest.mark.parametrize(
    "query", [{}, {"width": 0, "height": 5, "scale": 2}, {"width": 5, "height": 5, "scale": 5}]
)
def test_a_bad_question_gets_a_400_with_a_code(alice_api, query):
    r = alice_api.get("/api/v1/estimate", query)
    assert r.status_code == 400 and r.json()["code"] and r.json()["detail"]


def test_it_needs_credentials_and_is_in_the_schema(client, alice_api):
    assert client.get("/api/v1/estimate", {"width": 5, "height": 5, "scale": 2}).status_code == 401
    assert (
        "/api/v1/estimate" in alice_api.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    )


def test_a_target_is_priced_on_the_networks_output_and_says_the_scale_and_result(alice, alice_api):
    ran(alice, 500, 5)  # 0.2 MP/s at x2
    query = {"width": 500, "height": 400, "target_width": 900}
    body = alice_api.get("/api/v1/estimate", query).json()
    assert (body["scale"], body["result_width"], body["result_height"]) == (2, 900, 720)
    assert (body["output_width"], body["output_height"], body["output_megapixels"]) == (1000, 800, 0.8)
    assert body["run_seconds"] == 4.0 and body["too_large"] is None


@pytest.mark.parametrize(
    ("target", "said"),
    [(400, "already 500 pixels"), (1200, "x2 of this 500x400 picture reaches 1000 pixels")],
)
def test_it_says_why_a_target_would_be_refused(alice_api, target, said):
    body = alice_api.get("/api/v1/estimate", {"width": 500, "height": 400, "target_width": target}).json()
    assert said in body["too_large"]
