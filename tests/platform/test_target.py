"""A size asked for instead of a scale (issue 21), through the API, the page and batches: the job records the
target and the scale that reaches it, a real worker writes exactly that size, and a target that cannot be
made is refused with a 400 and its ``code``, nothing stored."""

import io
import json

import pytest
from PIL import Image

from tests.conftest import media_files, upload_file, wait_for
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, fields, name="photo.png", **size):
    image = upload_file(name, **({"width": 64, "height": 48} | size))
    return client.post("/api/v1/jobs", {"image": image, **fields}, format="multipart")


def result_image(client, job):
    r = client.get(f"/api/v1/jobs/{job.id}/result")
    assert r.status_code == 200
    return Image.open(io.BytesIO(b"".join(r.streaming_content)))


@pytest.mark.usefixtures("worker")
def test_a_target_width_gives_exactly_that_width_end_to_end(alice_api):
    r = post(alice_api, {"target_width": 100})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["scale"], body["target_side"], body["target_pixels"], body["target_dpi"]) == (
        2,
        "width",
        100,
        None,
    )
    assert body["size_summary"] == "x2 then resized to 100 pixels wide"
    job = wait_for(body["id"])
    assert job.status == "done", job.error
    assert (job.output_width, job.output_height) == (100, 75)
    with result_image(alice_api, job) as im:
        assert im.size == (100, 75)
    assert alice_api.get(f"/api/v1/jobs/{job.id}").json()["size_summary"] == "x2 then resized to 100x75"
    assert job.result_name == "photo-100x75.png"


@pytest.mark.usefixtures("worker")
def test_a_print_size_at_a_dpi_gives_its_pixels_and_density(alice_api):
    fields = {"target_long_side": 0.3, "target_unit": "in", "target_dpi": 300, "format": "jpeg"}
    r = post(alice_api, fields)  # 90 pixels on the longest side, at 300 DPI
    assert r.status_code == 201, r.content
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    with result_image(alice_api, job) as im:
        assert im.size == (90, 68) and tuple(round(v) for v in im.info["dpi"]) == (300, 300)


@pytest.mark.usefixtures("worker")
def test_the_page_form_asks_for_a_size_and_the_pages_say_what_was_made(alice_web):
    page = alice_web.get("/").content.decode()
    assert 'value="target"' in page and 'name="target_length"' in page
    fields = {"scale": "target", "target_side": "height", "target_length": "80", "target_unit": "px"}
    r = alice_web.post("/upload", {"image": upload_file(width=64, height=48), **fields})
    assert r.status_code == 302
    job = Job.objects.get()
    assert (job.scale, job.target_side, job.target_pixels) == (2, "height", 80)
    assert wait_for(job.id).status == "done"
    assert "x2 then resized to 107x80" in alice_web.get(f"/jobs/{job.id}").content.decode()
    assert "x2 then resized to 107x80" in alice_web.get("/jobs/").content.decode()


def test_a_batch_takes_a_target_for_every_file(alice_api):
    files = [upload_file("wide.png", width=64, height=32), upload_file("tall.png", width=32, height=64)]
    r = alice_api.post("/api/v1/batches", {"image": files, "target_long_side": 100}, format="multipart")
    assert r.status_code == 201, r.content
    assert [(j["scale"], j["target_side"], j["target_pixels"]) for j in r.json()["jobs"]] == [
        (2, "long_side", 100),
        (2, "long_side", 100),
    ]


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"target_width": 64}, "target_too_small", "The picture is already 64 pixels on that side"),
        ({"target_height": 20}, "target_too_small", "The picture is already 48 pixels on that side"),
        (
            {"target_width": 200},
            "too_large",
            "200 pixels wide cannot be made: x2 of this 64x48 picture reaches 128 pixels. "
            "The largest target that fits is 128 pixels wide.",
        ),
    ],
)
def test_a_target_that_cannot_be_made_is_refused_and_nothing_is_stored(alice_api, fields, code, message):
    r = post(alice_api, fields)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == code and r.json()["detail"].startswith(message)
    assert not Job.objects.exists() and media_files() == []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"scale": 2, "target_width": 100}, "non_field_errors", "Give a scale or a target size, not both"),
        ({"target_width": 100, "target_height": 80}, "non_field_errors", "Give one target size"),
        ({}, "scale", "Give a scale (2, 3, 4) or a target size."),
        ({"target_width": 10, "target_unit": "cm"}, "target_width", "needs a DPI"),
        ({"target_width": 100.5}, "target_width", "whole number"),
        ({"scale": 2, "target_dpi": 300}, "target_dpi", "A DPI goes with a target size."),
    ],
)
def test_a_malformed_target_is_a_field_error(alice_api, fields, field, message):
    r = post(alice_api, fields)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "invalid" and message in r.json()[field][0]
    assert not Job.objects.exists()


@pytest.mark.parametrize(("network", "scale"), [("edsr", 3), ("rlfn", 4)])
def test_the_smallest_scale_is_the_networks_own(alice_api, settings, tmp_path, network, scale):
    """150 pixels from 64 needs more than x2: EDSR runs x3; RLFN, which has no x3, runs x4."""
    entries = [{"scale": s} for s in (2, 3, 4)] + [{"scale": s, "network": "rlfn"} for s in (2, 4)]
    (tmp_path / "manifest.json").write_text(json.dumps({"models": entries}))
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    r = post(alice_api, {"target_width": 150, "network": network})
    assert r.status_code == 201, r.content
    assert r.json()["scale"] == scale and Job.objects.get().scale == scale


def test_the_schema_offers_the_target_fields(alice_api):
    schema = alice_api.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    for name in (
        "target_width",
        "target_height",
        "target_long_side",
        "target_unit",
        "target_dpi",
        "size_summary",
    ):
        assert name in schema
