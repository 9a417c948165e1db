"""Behind a reverse proxy: the client's address from X-Forwarded-For (only from TRUSTED_PROXIES, walked
from the right), X-Forwarded-Proto only from them, and failed logins counted per client and username."""

import pytest
from django.test import Client, RequestFactory

from webapp.proxy import client_ip

PROXY = "10.0.0.2"


def address(remote, forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **meta))


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "192.168.1.7"]


def test_it_ignores_x_forwarded_for_without_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = []
    assert address(PROXY, "203.0.113.9") == PROXY


def test_it_ignores_x_forwarded_for_from_an_untrusted_peer(behind_proxy):
    assert address("198.51.100.3", "203.0.113.9") == "198.51.100.3"


def test_it_takes_the_right_most_untrusted_hop(behind_proxy):
    assert address(PROXY, "203.0.113.9") == "203.0.113.9"
    assert address(PROXY, "203.0.113.9, 192.168.1.7, 10.0.0.5") == "203.0.113.9"


def test_it_never_believes_a_forged_left_most_entry(behind_proxy):
    assert address(PROXY, "1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert address(PROXY, "10.0.0.9, 203.0.113.9") == "203.0.113.9"  # a forged trusted address too


def test_it_uses_the_peer_when_a_trusted_proxy_sends_no_x_forwarded_for(behind_proxy):
    assert address(PROXY) == PROXY
    assert address("::ffff:10.0.0.2", "2001:db8::7") == "2001:db8::7"  # IPv4-mapped peer, IPv6 client


def test_it_refuses_a_malformed_trusted_proxy_entry(settings):
    from webapp.proxy import networks

    with pytest.raises(ValueError, match="not-an-ip"):
        networks(("10.0.0.0/8", "not-an-ip"))


@pytest.mark.parametrize("remote, secure", [(PROXY, True), ("198.51.100.3", False)])
def test_it_trusts_x_forwarded_proto_only_from_trusted_proxies(behind_proxy, settings, remote, secure):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    r = Client().get("/accounts/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_PROTO="https")
    assert r.status_code == (200 if secure else 301)


def login(username, password="wrong", forwarded="203.0.113.9", remote=PROXY):
    return Client().post(
        "/accounts/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=remote,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_it_counts_failed_logins_per_client_and_username_behind_the_proxy(behind_proxy, alice):
    assert [login("alice").status_code for _ in range(11)] == [200] * 10 + [429]
    blocked = login("alice", "a-long-secret-7")
    assert blocked.status_code == 429 and 1 <= int(blocked["Retry-After"]) <= 60
    assert login("alice", "a-long-secret-7", forwarded="203.0.113.10").status_code == 302  # another client
    assert (
        login("alice", forwarded="1.2.3.4, 203.0.113.10").status_code == 200
    )  # forging does not help the first


def test_it_counts_every_visitor_as_the_proxy_without_trusted_proxies(settings, alice):
    settings.TRUSTED_PROXIES = []
    codes = [login("alice", forwarded=f"203.0.113.{i}").status_code for i in range(11)]
    assert codes == [200] * 10 + [429]


def test_it_never_counts_successful_logins(behind_proxy, alice):
    assert {login("alice", "a-long-secret-7").status_code for _ in range(15)} == {302}


def test_it_limits_failed_logins_per_client_across_usernames(behind_proxy, settings, db):
    settings.LOGIN_FAILURES_PER_CLIENT = 30
    assert {login(f"user{i}").status_code for i in range(30)} == {200}
    assert login("someone-else").status_code == 429
    assert login("someone-else", forwarded="203.0.113.10").status_code == 200


def test_it_never_locks_a_username_out_from_everywhere(behind_proxy, alice):
    # 100 failures for her name from 25 addresses (4 each, under the per-client limit of 10).
    assert {login("alice", forwarded=f"203.0.113.{i // 4}").status_code for i in range(100)} == {200}
    assert login("alice", "a-long-secret-7", forwarded="198.51.100.77").status_code == 302


def test_it_locks_a_client_for_longer_each_time_it_comes_back_to_fail(behind_proxy, settings, alice):
    from webapp import ratelimit

    settings.LOGINS_PER_MINUTE = 3
    waits = []
    for _ in range(3):
        assert [login("alice").status_code for _ in range(3)] == [200] * 3
        blocked = login("alice", "a-long-secret-7")
        assert blocked.status_code == 429
        waits.append(int(blocked["Retry-After"]))
        ratelimit.connection().delete(f"{ratelimit.PREFIX}lock:login:203.0.113.9:alice")  # the lock ran out
    assert 55 <= waits[0] <= 60 and 115 <= waits[1] <= 120 and 235 <= waits[2] <= 240
    assert login("alice", "a-long-secret-7", forwarded="203.0.113.10").status_code == 302  # another client


def test_it_limits_the_admins_login_like_the_sites(behind_proxy, settings, make_user):
    make_user("root", is_staff=True, is_superuser=True)
    admin = Client()

    def attempt(password):
        return admin.post(
            "/admin/login/?next=/admin/",
            {"username": "root", "password": password},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR="203.0.113.9",
        )

    codes = [attempt("wrong").status_code for _ in range(40)]
    assert codes == [200] * 10 + [429] * 30
    right = attempt("a-long-secret-7")
    assert right.status_code == 429 and 1 <= int(right["Retry-After"]) <= 60
    assert login("root", "a-long-secret-7").status_code == 429  # the site's form shares the count


def test_it_counts_api_token_failures_like_the_login_form(behind_proxy, settings, alice):
    from rest_framework.test import APIClient

    settings.LOGINS_PER_MINUTE = 2
    api = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    good = {"username": "alice", "password": "a-long-secret-7"}
    assert api.post("/api/v1/auth/token", good).status_code == 200
    codes = [
        api.post("/api/v1/auth/token", {"username": "alice", "password": "x"}).status_code for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    blocked = api.post("/api/v1/auth/token", good)
    assert blocked.status_code == 429 and 1 <= int(blocked["Retry-After"]) <= 60
