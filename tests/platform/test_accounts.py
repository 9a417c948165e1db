"""Sign up, log in and out, passwords, API token page."""

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db


def test_it_signs_up_and_logs_in(client, django_user_model):
    r = client.post(
        "/accounts/signup/",
        {"username": "carol", "password1": "a-long-secret-7", "password2": "a-long-secret-7"},
    )
    assert r.status_code == 302
    assert django_user_model.objects.filter(username="carol").exists()
    assert client.get("/").context["user"].username == "carol"


def test_it_closes_signup_for_private_installs(client, settings):
    settings.SIGNUP_OPEN = False
    assert client.get("/accounts/signup/").status_code == 403
    assert "Sign up" not in client.get("/accounts/login/").content.decode()


def test_it_logs_in_and_out(client, alice):
    r = client.post("/accounts/login/", {"username": "alice", "password": "a-long-secret-7"})
    assert r.status_code == 302
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/jobs/").status_code == 302


def test_it_rate_limits_logins(client, alice, settings):
    settings.LOGINS_PER_MINUTE = 3
    codes = [
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_it_changes_the_password(client, alice):
    client.force_login(alice)
    r = client.post(
        "/accounts/password_change/",
        {
            "old_password": "a-long-secret-7",
            "new_password1": "another-secret-9",
            "new_password2": "another-secret-9",
        },
    )
    assert r.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("another-secret-9")


def test_it_mails_a_password_reset_link(client, alice):
    r = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert r.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body


def test_it_shows_and_replaces_the_api_token(client, alice):
    client.force_login(alice)
    client.post("/accounts/token/reset")
    first = alice.auth_token.key
    assert first in client.get("/accounts/token/").content.decode()
    client.post("/accounts/token/reset")
    alice.refresh_from_db()
    assert alice.auth_token.key != first
