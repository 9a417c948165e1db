"""Every API error carries a machine-readable ``code`` beside ``detail``, and the schema documents it."""

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
    assert set(result) == {"image/png", "image/jpeg", "image/webp"}
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"detail", "code"}
