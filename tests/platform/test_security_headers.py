"""The headers a scanner expects: a Content-Security-Policy without inline code (django-csp) on every page, the
API docs included, and the usual others."""

import re

import pytest

pytestmark = pytest.mark.django_db


def policy(response):
    return {
        part.split()[0]: part.split()[1:] for part in response["Content-Security-Policy"].split("; ") if part
    }


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/", "/admin/login/"])
def test_every_page_has_a_policy_that_forbids_inline_code_and_framing(client, path):
    r = client.get(path)
    assert r.status_code == 200
    csp = policy(r)
    assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"]
    assert (
        "'unsafe-inline'" not in r["Content-Security-Policy"]
        and "'unsafe-eval'" not in r["Content-Security-Policy"]
    )
    assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"] and csp["form-action"] == ["'self'"]


def test_the_pages_carry_the_other_security_headers(alice_web):
    r = alice_web.get("/jobs/")
    assert r["X-Content-Type-Options"] == "nosniff" and r["X-Frame-Options"] == "DENY"
    assert r["Referrer-Policy"] == "same-origin" and r["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in r["Permissions-Policy"] and r["Cross-Origin-Resource-Policy"] == "same-origin"


def test_the_pages_hold_no_inline_script_or_style(alice_web):
    for path in ("/", "/jobs/", "/webhooks/", "/accounts/token/"):
        html = alice_web.get(path).content.decode()
        # every script is a file; json_script's data blocks (type="application/json") are never run
        assert not re.search(r'<script(?![^>]*\b(?:src=|type="application/json"))[^>]*>', html), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), path


def test_the_api_docs_load_their_script_from_a_url_not_inline(alice_web):
    html = alice_web.get("/api/v1/docs").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    src = re.findall(r'<script[^>]*src="([^"]+)"', html)[-1]
    r = alice_web.get(src)
    assert r.status_code == 200 and "SwaggerUIBundle" in r.content.decode()
    assert policy(alice_web.get("/api/v1/docs"))["script-src"] == ["'self'"]


def test_a_downloaded_file_keeps_its_own_sandboxing_policy(alice, alice_web):
    from tests.platform.factories import make_job

    job = make_job(alice, "done")
    r = alice_web.get(f"/jobs/{job.id}/result")
    assert r["Content-Security-Policy"] == "default-src 'none'; sandbox"
