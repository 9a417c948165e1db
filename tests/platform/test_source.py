"""The source option (auto, clean, compressed) through the API, the page and a real worker, which records
the model and variant that ran."""

import pytest

from tests.conftest import image_bytes, upload_file, wait_for
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def jpeg(quality):
    return upload_file("photo.jpg", image_bytes(48, 40, "JPEG", quality=quality))


@pytest.mark.parametrize(
    ("upload", "variant"),
    [
        (lambda: upload_file("a.png"), "clean"),
        (lambda: upload_file("a.webp", image_bytes(48, 40, "WEBP", lossless=True)), "clean"),
        (lambda: jpeg(100), "clean"),
        (lambda: jpeg(60), "jpeg"),
    ],
    ids=["png", "lossless-webp", "jpeg-q100", "jpeg-q60"],
)
def test_auto_runs_the_variant_the_file_calls_for_and_the_worker_records_it(alice_api, upload, variant):
    r = alice_api.post("/api/v1/jobs", {"image": upload(), "scale": 2}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["source"] == "auto" and r.json()["model"] == "" and r.json()["variant"] == ""
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    assert job.variant == variant and ("_jpeg" in job.model) == (variant == "jpeg")
    assert job.model_choice.startswith("auto:")
    shown = alice_api.get(f"/api/v1/jobs/{job.id}").json()
    assert (shown["source"], shown["variant"], shown["model"]) == ("auto", variant, job.model)


@pytest.mark.parametrize(
    ("quality", "source", "variant"), [(60, "clean", "clean"), (98, "compressed", "jpeg")]
)
def test_the_api_overrides_auto(alice_api, quality, source, variant):
    r = alice_api.post(
        "/api/v1/jobs", {"image": jpeg(quality), "scale": 2, "source": source}, format="multipart"
    )
    job = wait_for(r.json()["id"])
    assert (job.source, job.variant) == (source, variant) and job.model_choice == f"asked for {source}"


def test_the_api_refuses_an_unknown_source(alice_api):
    r = alice_api.post("/api/v1/jobs", {"image": jpeg(60), "scale": 2, "source": "sharp"}, format="multipart")
    assert r.status_code == 400 and "source" in r.json()
    assert not Job.objects.exists()


def test_the_page_overrides_auto_and_shows_what_ran(alice_web):
    assert 'name="source"' in alice_web.get("/").content.decode()
    alice_web.post("/upload", {"image": jpeg(60), "scale": 2, "source": "clean"})
    job = wait_for(Job.objects.get().id)
    assert (job.source, job.variant) == ("clean", "clean")
    page = alice_web.get(f"/jobs/{job.id}").content.decode()
    assert (
        "Source asked: Clean" in page
        and f'<span id="model-name">{job.model}</span> (clean; asked for clean)' in page
    )


def test_the_page_refuses_an_unknown_source_with_a_message(alice_web):
    r = alice_web.post("/upload", {"image": jpeg(60), "scale": 2, "source": "sharp"}, follow=True)
    assert "Unknown source &#x27;sharp&#x27;" in r.content.decode() and not Job.objects.exists()


def test_the_schema_documents_the_source_and_the_variant(alice_api):
    schema = alice_api.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    assert "compressed" in schema and "model_choice" in schema
