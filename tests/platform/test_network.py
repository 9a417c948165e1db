"""The network option (issue 23): EDSR by default, RLFN ("fast and sharp") on request through every door
that makes jobs (the API, batches, the page) and said in the webhooks' payloads; a scale the network lacks is
refused with code unsupported_network before anything is stored; the job records what was asked."""

import json

import pytest

from tests.conftest import configure_engine, upload_file, wait_for
from webapp.integrations.models import Batch
from webapp.integrations.webhooks import job_payload
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


@pytest.fixture
def edsr_has_x3(settings, tmp_path):
    """A manifest as if EDSR had x3 and RLFN only x2 (the test models are x2 only): read as data, never run."""
    entries = [{"scale": 2}, {"scale": 3}, {"scale": 2, "network": "rlfn"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"


@pytest.mark.usefixtures("edsr_has_x3")
def test_a_scale_the_network_lacks_is_refused_and_nothing_is_stored(alice_api):
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


@pytest.mark.usefixtures("worker")
def test_a_batch_runs_every_file_on_the_network_asked_for(alice_api):
    r = alice_api.post(
        "/api/v1/batches",
        {
            "image": [upload_file("a.png"), upload_file("b.png")],
            "scale": 2,
            "network": "rlfn",
            "source": "clean",
        },
        format="multipart",
    )
    assert r.status_code == 201, r.content
    assert [(j["network"], j["source"]) for j in r.json()["jobs"]] == [("rlfn", "clean")] * 2
    for listed in r.json()["jobs"]:
        job = wait_for(listed["id"])
        assert job.status == "done", job.error
        assert (job.network, job.variant) == ("rlfn", "clean") and job.model.startswith("rlfn_x2")


def test_a_batch_without_a_choice_gets_the_operators_default(alice_api, monkeypatch):
    configure_engine(monkeypatch, default_network="rlfn")  # UPSCALE_DEFAULT_NETWORK=rlfn
    r = alice_api.post("/api/v1/batches", {"image": [upload_file("a.png")], "scale": 2}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["jobs"][0]["network"] == "rlfn" and Job.objects.get().network == "rlfn"


@pytest.mark.usefixtures("edsr_has_x3")
def test_a_batch_on_a_network_that_lacks_the_scale_is_refused_whole(alice_api):
    files = [upload_file("a.png"), upload_file("b.png")]
    r = alice_api.post("/api/v1/batches", {"image": files, "scale": 3, "network": "rlfn"}, format="multipart")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "unsupported_network"
    assert body["detail"] == "RLFN has no x3 model; choose x2, or the EDSR network."
    assert body["network"] == [body["detail"]]
    assert not Job.objects.exists() and not Batch.objects.exists()


def test_a_network_left_out_by_the_operator_is_refused_at_every_door(alice_api, monkeypatch):
    configure_engine(monkeypatch, networks=("edsr",))  # UPSCALE_MODELS=edsr
    job = alice_api.post("/api/v1/jobs", {"image": upload_file("a.png"), "scale": 2, "network": "rlfn"})
    batch = alice_api.post(
        "/api/v1/batches",
        {"image": [upload_file("a.png")], "scale": 2, "network": "rlfn"},
        format="multipart",
    )
    for r in (job, batch):
        assert r.status_code == 400 and r.json()["code"] == "unsupported_network"
        assert r.json()["detail"] == "The RLFN network is not offered on this server."
    assert not Job.objects.exists()


def test_the_network_is_one_enum_in_the_schema_wherever_a_job_is_made_or_estimated(alice_api):
    schema = alice_api.get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]

    def enum(field):
        return components[field["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]

    for body in ("JobCreateRequest", "BatchCreateRequest"):
        fields = components[body]["properties"]
        assert enum(fields["network"]) == ["edsr", "rlfn"], body
        assert "unsupported_network" in fields["network"]["description"]
        assert enum(fields["source"]) == ["auto", "clean", "compressed"]
    query = {p["name"]: p for p in schema["paths"]["/api/v1/estimate/"]["get"]["parameters"]}
    assert query["network"]["schema"]["enum"] == ["edsr", "rlfn"]
    assert enum(components["Estimate"]["properties"]["network"]) == ["edsr", "rlfn"]


def test_the_webhook_payload_says_which_network_and_model_ran(alice):
    from tests.platform.factories import make_job

    job = make_job(alice, "done", network="rlfn", model="rlfn_x2", variant="clean")
    data = job_payload(job)
    assert (data["network"], data["model"], data["variant"]) == ("rlfn", "rlfn_x2", "clean")


@pytest.mark.usefixtures("edsr_has_x3")
def test_the_page_says_before_uploading_which_scales_a_network_lacks(alice_web):
    page = alice_web.get("/").content.decode()
    limits = json.loads(page.split('<script id="limits" type="application/json">')[1].split("</script>")[0])
    assert limits["networkRefusals"] == {
        "rlfn": {"3": "RLFN has no x3 model; choose x2, or the EDSR network."}
    }
    r = alice_web.post("/upload", {"image": upload_file("a.png"), "scale": 3, "network": "rlfn"}, follow=True)
    assert "RLFN has no x3 model" in r.content.decode() and not Job.objects.exists()


def test_the_history_and_the_admin_say_which_network_ran(alice, alice_web, admin_client):
    from tests.platform.factories import make_job

    make_job(alice, "done", network="rlfn", model="rlfn_x2", original_name="fast.png")
    make_job(alice, "done", network="edsr", model="edsr_baseline_x2", original_name="slow.png")
    history = alice_web.get("/jobs/").content.decode()
    assert history.count("Fast and sharp (RLFN)") == 1  # EDSR, the default, goes without saying
    listed = admin_client.get("/admin/jobs/job/", {"network__exact": "rlfn"}).content.decode()
    assert "fast.png" in listed and "slow.png" not in listed
