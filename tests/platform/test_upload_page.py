"""The upload page's helpers: one status poll for all its cards, and the limits its script checks."""

import json

import pytest

from tests.platform.factories import make_job

pytestmark = pytest.mark.django_db


def test_it_answers_the_status_of_several_own_jobs_in_one_poll_and_leaves_out_others(alice, bob, alice_web):
    mine = [make_job(alice, "done"), make_job(alice, "queued")]
    theirs = make_job(bob, "done")
    ids = [str(j.id) for j in (*mine, theirs)] + ["not-a-uuid"]
    r = alice_web.get("/jobs/status", {"job": ids})
    assert r.status_code == 200
    assert {j["id"]: j["status"] for j in r.json()["jobs"]} == {
        str(mine[0].id): "done",
        str(mine[1].id): "queued",
    }


def test_it_needs_a_login_to_poll(client, alice):
    assert client.get("/jobs/status", {"job": str(make_job(alice).id)}).status_code == 302


def test_the_page_hands_its_script_the_sites_limits(alice_web, settings):
    settings.MAX_OUTPUT_MEGAPIXELS = 50
    page = alice_web.get("/").content.decode()
    limits = json.loads(page.split('<script id="limits" type="application/json">')[1].split("</script>")[0])
    assert limits["outputMegapixels"] == 50 and limits["maxSide"]["webp"] == 16383


def test_a_refused_webhook_url_stays_in_the_field_and_the_page_says_why(alice_web):
    page = alice_web.post("/webhooks/", {"url": "http://10.1.2.3/hook", "events": ["job.succeeded"]})
    text = page.content.decode()
    assert 'value="http://10.1.2.3/hook"' in text
    assert "not a public address" in text and "WEBHOOKS_ALLOWED_CIDRS" in text


def test_sign_up_shows_the_new_api_token_with_a_link_to_the_docs(client, settings):
    settings.SIGNUP_OPEN = True
    r = client.post(
        "/accounts/signup/",
        {"username": "nora", "password1": "a-long-secret-7", "password2": "a-long-secret-7"},
        follow=True,
    )
    from rest_framework.authtoken.models import Token

    key = Token.objects.get(user__username="nora").key
    text = r.content.decode()
    assert f'<code id="new-token">{key}</code>' in text and 'href="/api/v1/docs' in text


def test_every_page_names_the_site_and_its_icon_is_there(client, settings):
    page = client.get("/accounts/login/").content.decode()
    assert f'class="brand" href="/">{settings.SITE_NAME}</a>' in page and 'rel="icon"' in page
    r = client.get("/favicon.ico")
    assert r.status_code == 301 and r["Location"].endswith("favicon.svg")
