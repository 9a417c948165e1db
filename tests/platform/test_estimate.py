"""GET /api/v1/estimate: the output size, the limits and the wait, before uploading anything."""

from datetime import timedelta

import pytest

from tests.platform.factories import make_job

pytestmark = pytest.mark.django_db


def ran(owner, size, seconds, scale=2, network="edsr"):
    """A done job whose worker took ``seconds`` for a ``size`` x ``size`` input."""
    job = make_job(owner, "done", size=size, scale=scale, network=network, model=f"{network}_x{scale}")
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


def test_it_measures_each_network_apart(alice, alice_api):
    ran(alice, 500, 5, network="edsr")  # 1 output megapixel in 5 s: 0.2 MP/s
    ran(alice, 500, 2, network="rlfn")  # 0.5 MP/s
    ran(alice, 500, 8, scale=4, network="rlfn")  # another scale: not RLFN x2's speed
    ask = {"width": 500, "height": 500, "scale": 2}
    edsr = alice_api.get("/api/v1/estimate", {**ask, "network": "edsr"}).json()
    rlfn = alice_api.get("/api/v1/estimate", {**ask, "network": "rlfn"}).json()
    assert (edsr["network"], edsr["megapixels_per_second"], edsr["run_seconds"]) == ("edsr", 0.2, 5.0)
    assert (rlfn["network"], rlfn["megapixels_per_second"], rlfn["run_seconds"]) == ("rlfn", 0.5, 2.0)
    assert edsr["measured_jobs"] == rlfn["measured_jobs"] == 1


def test_without_a_network_it_answers_for_the_operators_default(alice, alice_api, monkeypatch):
    from tests.conftest import configure_engine

    ran(alice, 500, 5, network="edsr")
    ran(alice, 500, 2, network="rlfn")
    ask = {"width": 500, "height": 500, "scale": 2}
    assert alice_api.get("/api/v1/estimate", ask).json()["run_seconds"] == 5.0
    configure_engine(monkeypatch, default_network="rlfn")  # UPSCALE_DEFAULT_NETWORK=rlfn
    body = alice_api.get("/api/v1/estimate", ask).json()
    assert body["network"] == "rlfn" and body["run_seconds"] == 2.0


def test_the_wait_takes_each_queued_job_at_its_own_networks_speed(alice, bob, alice_api):
    ran(alice, 500, 5, network="edsr")  # 0.2 MP/s
    ran(alice, 500, 1, network="rlfn")  # 1 MP/s
    make_job(bob, "queued", size=500, network="edsr")  # 1 MP ahead at EDSR's speed: 5 s
    make_job(bob, "queued", size=500, network="rlfn")  # 1 MP ahead at RLFN's: 1 s
    make_job(
        bob, "queued", size=500, scale=4, network="rlfn"
    )  # 4 MP, RLFN x4 unmeasured: x4 on any, none, so
    # the new job's own speed (RLFN x2, 1 MP/s): 4 s
    body = alice_api.get(
        "/api/v1/estimate", {"width": 500, "height": 500, "scale": 2, "network": "rlfn"}
    ).json()
    assert body["queued_jobs"] == 3 and body["wait_seconds"] == 10.0 and body["total_seconds"] == 11.0


def test_a_network_that_lacks_the_scale_is_a_400_with_a_code(alice_api, settings, tmp_path):
    import json

    entries = [{"scale": 2}, {"scale": 3}, {"scale": 2, "network": "rlfn"}]  # as if EDSR had x3
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    r = alice_api.get("/api/v1/estimate", {"width": 50, "height": 50, "scale": 3, "network": "rlfn"})
    assert r.status_code == 400 and r.json()["code"] == "unsupported_network"
    assert r.json()["detail"] == "RLFN has no x3 model; choose x2, or the EDSR network."
    assert alice_api.get("/api/v1/estimate", {"width": 50, "height": 50, "scale": 3}).status_code == 200


def test_it_says_why_a_size_would_be_refused(alice_api, settings):
    settings.MAX_OUTPUT_MEGAPIXELS = 100
    body = alice_api.get("/api/v1/estimate", {"width": 4000, "height": 3000, "scale": 4}).json()
    assert "192.0 megapixels" in body["too_large"] and "x2" in body["too_large"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"width": 0, "height": 5, "scale": 2},
        {"width": 5, "height": 5, "scale": 5},
        {"width": 5, "height": 5, "scale": 2, "network": "srgan"},
    ],
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
