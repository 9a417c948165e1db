"""Nobody reaches another user's job by any URL or API call: 404, never 403."""

import pytest

from tests.platform.factories import make_job
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db

WEB_GETS = ["", "/status", "/input", "/result", "/input-preview", "/result-preview", "/thumbnail"]
WEB_POSTS = ["/cancel", "/retry", "/delete"]


@pytest.fixture
def job(alice):
    return make_job(alice, "done")


@pytest.mark.parametrize("suffix", WEB_GETS)
def test_it_serves_the_owner(client, alice, job, suffix):
    client.force_login(alice)
    assert client.get(f"/jobs/{job.id}{suffix}").status_code == 200


@pytest.mark.parametrize("suffix", WEB_GETS)
def test_it_hides_pages_and_files_from_another_user(client, bob, job, suffix):
    client.force_login(bob)
    assert client.get(f"/jobs/{job.id}{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", WEB_POSTS)
def test_it_refuses_actions_from_another_user(client, bob, job, suffix):
    client.force_login(bob)
    assert client.post(f"/jobs/{job.id}{suffix}").status_code == 404
    job.refresh_from_db()
    assert job.status == "done"


def test_it_ignores_another_users_jobs_in_bulk_delete(client, bob, job):
    client.force_login(bob)
    client.post("/jobs/delete", {"job": [str(job.id)]})
    assert Job.objects.filter(pk=job.id).exists()


def test_it_sends_anonymous_visitors_to_log_in(client, job):
    r = client.get(f"/jobs/{job.id}")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "method,suffix",
    [("get", ""), ("get", "/result"), ("post", "/cancel"), ("post", "/retry"), ("delete", "")],
)
def test_it_hides_jobs_from_another_api_user(bob_api, job, method, suffix):
    r = getattr(bob_api, method)(f"/api/v1/jobs/{job.id}{suffix}")
    assert r.status_code == 404
    assert Job.objects.get(pk=job.id).status == "done"


def test_it_lists_only_the_callers_jobs(alice, bob, bob_api):
    make_job(alice)
    mine = make_job(bob)
    body = bob_api.get("/api/v1/jobs").json()
    assert body["count"] == 1 and body["results"][0]["id"] == str(mine.id)


def test_it_shows_history_only_to_the_owner(client, alice, bob):
    make_job(alice)
    client.force_login(bob)
    assert "cat.png" not in client.get("/jobs/").content.decode()


def test_it_answers_401_with_www_authenticate_without_credentials(client, job):
    for path in ("/api/v1/jobs", f"/api/v1/jobs/{job.id}"):
        r = client.get(path)
        assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Token")


def test_it_lets_staff_see_all_jobs_in_the_admin(client, make_user, job):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    r = client.get("/admin/jobs/job/")
    assert r.status_code == 200
    page = r.content.decode()
    assert "cat.png" in page and "queued" in page and "Failures in the last 24 h" in page
    assert client.get(f"/admin/jobs/job/{job.id}/change/").status_code == 200
