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
