"""A private Redis, restarted without persistence while jobs are queued and running: nothing accepted is
lost. Runs the real processes: gunicorn, a worker and the beat, all pointed at that Redis."""

import re
import sys
import time

import pytest
import requests

from tests.conftest import Worker, image_bytes, media_files, service_env, wait_for
from tests.platform.processes import Process, answers, free_port, private_redis  # noqa: F401 (a fixture)
from webapp.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def platform(private_redis, tmp_path, alice):
    """Web (gunicorn), one worker and the beat, all on the private Redis."""
    env = {"REDIS_URL": private_redis["url"], "SWEEP_INTERVAL": "1", "REPUBLISH_AFTER": "2"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = Process(
        [sys.executable, "-m", "gunicorn", "webapp.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        tmp_path / "web.log",
        service_env(**env),
        lambda: answers(base + "/healthz"),
    )
    beat = Process(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webapp",
            "beat",
            "--schedule",
            str(tmp_path / "beat"),
            "--loglevel",
            "INFO",
        ],
        tmp_path / "beat.log",
        service_env(**env),
        lambda: "beat: Starting" in (tmp_path / "beat.log").read_text(),
    )
    try:
        worker = Worker(tmp_path, **env)
    except BaseException:
        web.stop(), beat.stop()
        raise
    yield base
    for p in (web, beat, worker):
        p.stop()


def login(base):
    """A browser-like session: the login form with its CSRF token."""
    s = requests.Session()
    form = s.get(base + "/accounts/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    r = s.post(
        base + "/accounts/login/",
        {"username": "alice", "password": "a-long-secret-7", "csrfmiddlewaretoken": token},
        headers={"Referer": base},
    )
    assert r.status_code == 200 and "Log out alice" in r.text
    return s


def upload(base, token, size):
    started = time.monotonic()
    r = requests.post(
        base + "/api/v1/jobs",
        headers={"Authorization": f"Token {token}"},
        files={"image": ("a.png", image_bytes(size, size))},
        data={"scale": 2},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], time.monotonic() - started


def test_nothing_accepted_is_lost_when_redis_restarts(platform, private_redis, alice):
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from rest_framework.authtoken.models import Token

    alice.password = PBKDF2PasswordHasher().encode("a-long-secret-7", "salt", iterations=1000)
    alice.save()  # a hash the web process knows (the tests' own hasher is faster)

    token = Token.objects.create(user=alice).key
    browser = login(platform)
    running, _ = upload(platform, token, 256)
    queued = [upload(platform, token, 48)[0] for _ in range(2)]
    wait_for(running, ("running",))

    private_redis["proc"].stop()  # no persistence: the queue is gone
    during = []
    for _ in range(2):
        job_id, seconds = upload(platform, token, 48)
        assert seconds < 1.5  # publishing never blocks a request long
        during.append(job_id)
    assert browser.get(platform + "/jobs/").status_code == 200  # history works
    login(platform)  # so does logging in (sessions in the database, rate limits fail open)
    assert browser.get(platform + f"/jobs/{running}").status_code == 200
    health = requests.get(platform + "/healthz").json()
    assert health["broker"].startswith("failed") and health["database"] == "ok"
    time.sleep(1)

    private_redis["proc"] = private_redis["start"]()
    jobs = [wait_for(job_id, timeout=60) for job_id in [running, *queued, *during]]
    assert [job.status for job in jobs] == ["done"] * 5
    assert len(media_files("results")) == 5  # each ran to the end exactly once
    assert Job.objects.filter(published_at=None).count() == 0


def test_it_limits_bodies_and_logins_through_a_real_server(platform):
    """A huge Content-Length gets 413 before the body is read; login attempts are counted in Redis,
    shared by gunicorn's two processes."""
    import socket
    from urllib.parse import urlparse

    codes = [
        requests.post(
            platform + "/api/v1/auth/token", data={"username": "alice", "password": "wrong"}
        ).status_code
        for _ in range(11)
    ]
    assert codes == [400] * 10 + [429]

    url = urlparse(platform)
    with socket.create_connection((url.hostname, url.port), timeout=5) as s:
        s.sendall(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=x\r\nContent-Length: 10000000000\r\nAuthorization: Token nope\r\n\r\n"
        )
        assert s.recv(200).startswith(b"HTTP/1.1 413")
