"""Every API error carries a machine-readable ``code`` beside ``detail``, and the schema documents it."""

import os

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.conftest import upload_file

pytestmark = pytest.mark.django_db


def post_job(client, data=None, **fields):
    return client.post(
        "/api/v1/jobs", {"image": upload_file(data=data), "scale": 2, **fields}, format="multipart"
    )


def test_it_names_an_unsupported_format(alice_api):
    r = post_job(alice_api, data=b"%PDF-1.4 not an image")
    assert r.status_code == 400 and r.json()["code"] == "unsupported_format" and r.json()["detail"]


@override_settings(MAX_INPUT_MEGAPIXELS=0.001)
def test_it_names_a_too_large_image(alice_api):
    r = post_job(alice_api)
    assert r.status_code == 400 and r.json()["code"] == "too_large"


@override_settings(MAX_QUEUED_JOBS_PER_USER=0)
def test_it_names_an_exceeded_quota(alice_api):
    r = post_job(alice_api)
    assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"


@override_settings(UPLOADS_PER_MINUTE=0)
def test_it_names_a_rate_limit(alice_api):
    r = post_job(alice_api)
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"


def test_a_field_error_keeps_its_field_and_gains_detail_and_code(alice_api):
    r = post_job(alice_api, scale=5)
    body = r.json()
    assert (
        r.status_code == 400
        and body["code"] == "invalid"
        and body["scale"]
        and body["detail"].startswith("scale: ")
    )


def test_it_names_not_found_even_for_a_path_no_route_matches(alice_api):
    for path in ("/api/v1/jobs/0a0a0a0a-0000-4000-8000-000000000000", "/api/v1/jobs/0.5/", "/api/v1/nothing"):
        r = alice_api.get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found", path


def test_it_names_missing_credentials():
    r = APIClient().get("/api/v1/jobs")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated" and r["WWW-Authenticate"]


def test_it_names_a_body_over_the_limit(alice_api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    r = post_job(alice_api, data=b"\x89PNG" + bytes(5000))
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_the_schema_lists_each_operations_errors_and_the_results_image_types():
    schema = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    create = schema["paths"]["/api/v1/jobs/"]["post"]["responses"]
    assert {"201", "400", "401", "411", "413", "429", "default"} <= set(create)
    assert create["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"404", "409"} <= set(schema["paths"]["/api/v1/jobs/{id}/cancel/"]["post"]["responses"])
    assert "403" in schema["paths"]["/api/v1/auth/register/"]["post"]["responses"]
    assert "404" in schema["paths"]["/api/v1/jobs/"]["get"]["responses"]  # a page past the end
    result = schema["paths"]["/api/v1/jobs/{id}/result/"]["get"]["responses"]["200"]["content"]
    assert set(result) == {
        "image/png",
        "image/jpeg",
        "image/webp",
        "image/avif",
        "image/tiff",
        "application/octet-stream",
    }
    batch = schema["paths"]["/api/v1/batches/{id}/download/"]["get"]["responses"]["200"]["content"]
    assert set(batch) == {"application/zip", "application/octet-stream"}
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "code"}


def test_an_unexpected_error_under_the_api_is_json_with_a_code(alice, monkeypatch):
    from tests.conftest import token_client
    from webapp.jobs.services import web

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(web, "submit", broken)
    api = token_client(alice)
    api.raise_request_exception = False
    r = post_job(api)
    assert r.status_code == 500 and r["Content-Type"] == "application/json"
    assert r.json() == {"detail": "An unexpected error on the server.", "code": "server_error"}


def test_a_full_disk_answers_507_and_keeps_nothing_of_the_upload(alice_api, monkeypatch):
    import errno

    from django.core.files.storage import FileSystemStorage

    from tests.conftest import media_files
    from webapp.jobs.models import Job

    def full(self, name, content):  # the first bytes land, then the disk is full
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", full)
    r = post_job(alice_api)
    assert r.status_code == 507 and r.json()["code"] == "insufficient_storage"
    assert media_files("inputs") == [] and not Job.objects.exists()


def test_the_schema_documents_500_everywhere_and_507_where_uploads_are_stored():
    schema = APIClient().get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert "500" in operation["responses"], (method, path)
    for path in ("/api/v1/jobs/", "/api/v1/batches/"):
        assert "507" in schema["paths"][path]["post"]["responses"]


def damaged_png():
    """A PNG whose header and chunk checksums are sound but whose pixel data does not inflate."""
    import struct
    import zlib

    from tests.conftest import image_bytes

    data = bytearray(image_bytes(64, 64))
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4 : i])[0]
    body = bytes(b ^ 0x5A if 10 <= k < n - 10 else b for k, b in enumerate(data[i + 4 : i + 4 + n]))
    data[i + 4 : i + 4 + n] = body
    data[i + 4 + n : i + 8 + n] = struct.pack(">I", zlib.crc32(b"IDAT" + body))
    return bytes(data)


@pytest.mark.django_db(transaction=True)
def test_the_worker_tells_a_damaged_image_from_a_storage_fault(alice_api, worker):
    from tests.conftest import wait_for

    r = post_job(alice_api, data=damaged_png())
    if r.status_code == 400:  # refused at upload already: as good
        assert r.json()["code"] in ("invalid", "unsupported_format")
        return
    job = wait_for(r.json()["id"])
    assert job.status == "failed" and "damaged" in job.error, job.error
    assert "stored" not in job.error and "try again" not in job.error  # not told to retry a storage fault


@pytest.mark.parametrize(
    "accept, answered",
    [
        (None, "image/png"),
        ("*/*", "image/png"),
        ("image/png", "image/png"),
        ("application/octet-stream", "application/octet-stream"),
        ("image/png;q=0.5, application/octet-stream", "application/octet-stream"),
    ],
)
def test_a_download_answers_the_type_accept_prefers(alice, alice_api, accept, answered):
    from tests.platform.factories import make_job
    from webapp.integrations.models import Batch

    job = make_job(alice, "done")
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    r = alice_api.get(f"/api/v1/jobs/{job.id}/result", **headers)
    assert r.status_code == 200 and r["Content-Type"] == answered
    assert b"".join(r.streaming_content) == job.result_file.open("rb").read()
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(job)
    zipped = alice_api.get(f"/api/v1/batches/{batch.id}/download", **headers)
    assert zipped["Content-Type"] == answered.replace("image/png", "application/zip")


def test_a_download_error_is_json_whatever_accept_asked_for(alice_api):
    missing = "0a0a0a0a-0000-4000-8000-000000000000"
    for accept in ("application/octet-stream", "image/png"):
        r = alice_api.get(f"/api/v1/jobs/{missing}/result", HTTP_ACCEPT=accept)
        assert r.status_code == 404 and r["Content-Type"] == "application/json"
        assert r.json()["code"] == "not_found"


def test_djangos_own_refusals_under_the_api_are_json_too(alice_api, client):
    r = alice_api.get("/api/v1/jobs", HTTP_HOST="evil.example")  # not in ALLOWED_HOSTS
    assert r.status_code == 400 and r.json()["code"] == "invalid"
    page = client.get("/", HTTP_HOST="evil.example")
    assert page.status_code == 400 and "json" not in page["Content-Type"]  # the site keeps its pages
