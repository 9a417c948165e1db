"""The network option (issue 23): EDSR by default, RLFN ("fast and sharp") on request through the API and
the page; a scale the network lacks is refused before anything is stored; the job records what was asked."""

import json

import pytest

from tests.conftest import upload_file, wait_for
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("worker")
def test_the_api_runs_rlfn_when_asked_and_records_it(alice_api):
    r = alice_api.post("/api/v1/jobs", {"image": upload_file("a.png"), "scale": 2, "network": "rlfn"})
    assert r.status_code == 201, r.content
    assert r.json()["network"] == "rlfn"
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    assert job.network == "rlfn" and job.model.startswith("rlfn_x2")


def test_without_a_choice_the_job_gets_edsr(alice_api):
    r = alice_api.post("/api/v1/jobs", {"image": upload_file("a.png"), "scale": 2})
    assert r.status_code == 201, r.content
    assert r.json()["network"] == "edsr" and Job.objects.get().network == "edsr"


def test_a_scale_the_network_lacks_is_refused_and_nothing_is_stored(alice_api, settings, tmp_path):
    entries = [{"scale": 2}, {"scale": 3}, {"scale": 2, "network": "rlfn"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    r = alice_api.post("/api/v1/jobs", {"image": upload_file("a.png"), "scale": 3, "network": "rlfn"})
    assert r.status_code == 400
    assert r.json()["code"] == "unsupported_network"
    assert r.json()["detail"] == "RLFN has no x3 model; choose x2, or the EDSR network."
    assert not Job.objects.exists()


def test_an_unknown_network_is_a_field_error(alice_api):
    r = alice_api.post("/api/v1/jobs", {"image": upload_file("a.png"), "scale": 2, "network": "srgan"})
    assert r.status_code == 400 and "network" in r.json()
    assert not Job.objects.exists()


def test_the_page_offers_the_network_and_says_it_in_plain_words(alice_web):
    assert 'name="network"' in alice_web.get("/").content.decode()
    alice_web.post("/upload", {"image": upload_file("a.png"), "scale": 2, "network": "rlfn"})
    job = Job.objects.get()
    assert job.network == "rlfn"
    assert "Fast and sharp (RLFN)" in alice_web.get(f"/jobs/{job.id}").content.decode()
