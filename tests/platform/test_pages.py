"""Server-rendered pages: upload, history, job actions, health."""

import pytest

from tests.conftest import media_files, upload_file
from tests.platform.factories import make_job
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def test_it_shows_a_landing_page_to_visitors(client):
    r = client.get("/")
    assert r.status_code == 200 and "Log in" in r.content.decode()


def test_it_shows_the_upload_form(alice_web):
    page = alice_web.get("/").content.decode()
    assert 'type="file"' in page and 'name="scale"' in page and "csrfmiddlewaretoken" in page


def test_it_uploads_several_files_at_once(alice_web):
    r = alice_web.post("/upload", {"image": [upload_file("a.png"), upload_file("b.png")], "scale": 2})
    assert r.status_code == 302 and r["Location"] == "/jobs/"
    assert sorted(Job.objects.values_list("original_name", flat=True)) == ["a.png", "b.png"]


def test_it_answers_json_to_the_pages_script(alice_web):
    r = alice_web.post("/upload", {"image": upload_file(), "scale": 2}, HTTP_ACCEPT="application/json")
    assert r.status_code == 201 and r.json()["status"] == "queued"


def test_it_gives_a_message_per_refused_file(alice_web):
    bad = upload_file("evil.png", b"<html></html>")
    r = alice_web.post("/upload", {"image": [upload_file("ok.png"), bad], "scale": 2}, follow=True)
    page = r.content.decode()
    assert "evil.png: This is not a PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF image." in page
    assert Job.objects.count() == 1


def test_it_refuses_a_refused_file_as_json(alice_web):
    r = alice_web.post(
        "/upload", {"image": upload_file("x.png", b"GIF89a"), "scale": 2}, HTTP_ACCEPT="application/json"
    )
    assert r.status_code == 400 and r.json()["filename"] == "x.png"


def test_it_requires_csrf_on_forms(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/upload", {"image": upload_file(), "scale": 2}).status_code == 403
    job = make_job(alice)
    assert client.post(f"/jobs/{job.id}/delete").status_code == 403


def test_it_lists_history_newest_first_with_a_filter(alice, alice_web):
    make_job(alice, "done", original_name="old.png")
    make_job(alice, original_name="new.png")
    page = alice_web.get("/jobs/").content.decode()
    assert page.index("new.png") < page.index("old.png")
    assert "new.png" not in alice_web.get("/jobs/?status=done").content.decode()


def test_it_paginates_history(alice, alice_web):
    for _ in range(25):
        make_job(alice)
    page = alice_web.get("/jobs/?page=2").content.decode()
    assert "Page 2 of 2" in page


def test_it_bulk_deletes(alice, alice_web):
    a, b, c = make_job(alice), make_job(alice, "done"), make_job(alice)
    alice_web.post("/jobs/delete", {"job": [str(a.id), str(b.id), "junk"]})
    assert list(Job.objects.values_list("id", flat=True)) == [c.id]
    assert len(media_files("inputs")) == 1 and media_files("results") == []


def test_it_cancels_retries_and_deletes_from_the_job_page(alice, alice_web):
    job = make_job(alice)
    alice_web.post(f"/jobs/{job.id}/cancel")
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert "Retry" in alice_web.get(f"/jobs/{job.id}").content.decode()
    alice_web.post(f"/jobs/{job.id}/retry")
    job.refresh_from_db()
    assert job.status == "queued"
    assert alice_web.post(f"/jobs/{job.id}/delete").status_code == 302
    assert not Job.objects.exists()


def test_it_shows_the_slider_sizes_and_download_for_a_done_job(alice, alice_web):
    job = make_job(alice, "done")
    page = alice_web.get(f"/jobs/{job.id}").content.decode()
    assert 'id="slider"' in page and "32x32" in page and f"/jobs/{job.id}/result" in page


def test_it_serves_files_with_nosniff_and_real_types(alice, alice_web):
    job = make_job(alice, "done")
    r = alice_web.get(f"/jobs/{job.id}/result")
    assert r["Content-Type"] == "image/png" and r["X-Content-Type-Options"] == "nosniff"
    assert (
        alice_web.get(f"/jobs/{job.id}/thumbnail")["Content-Type"] == "image/webp"
    )  # the factory stores WebP


def test_it_never_serves_media_from_a_public_url(alice, client):
    job = make_job(alice, "done")
    assert client.get("/media/" + job.result_file.name).status_code == 404
    assert client.get("/" + job.result_file.name).status_code == 404


def test_it_reports_health(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}


def test_it_reports_a_broken_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json()["broker"].startswith("failed")


def test_it_links_the_api_docs(alice_web):
    assert "/api/v1/docs" in alice_web.get("/accounts/token/").content.decode()
    assert alice_web.get("/api/v1/docs").status_code == 200


def test_it_passes_the_deploy_checks():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        SECRET_KEY="x" * 60 + "-a-real-secret-key-for-check-deploy",
        DEBUG="0",
        HTTPS="1",
        DJANGO_SETTINGS_MODULE="webapp.settings",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_web_process_imports_only_the_engines_header_check_limits_and_target_arithmetic():
    import subprocess
    import sys

    code = (
        "import django, sys; django.setup()\n"
        "from django.test import Client\n"
        "import webapp.urls, webapp.jobs.services.web, webapp.jobs.services.sweeper, webapp.jobs.api\n"
        "import webapp.health, webapp.jobs.tasks\n"
        "Client().get('/healthz'); Client().get('/api/v1/schema')\n"
        "light = {'upscale_worker.engine', 'upscale_worker.engine.errors', 'upscale_worker.engine.header',\n"
        "         'upscale_worker.engine.limits', 'upscale_worker.engine.structure', 'upscale_worker.engine.vocabulary',\n"
        "         'upscale_worker.engine.config', 'upscale_worker.engine.models',\n"
        "         'upscale_worker.engine.target'}  # Django-free, no OpenVINO: shared with the CLI\n"
        "bad = [m for m in sys.modules if m.startswith(('openvino', 'cv2', 'upscale_worker.engine')) and m not in light]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_it_serves_the_api_docs_without_the_internet(alice_web):
    html = alice_web.get("/api/v1/docs").content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "https://" not in html
