"""No client stalls the site: the real web server as `make run` starts it (scripts/run.py's command), while one
user holds many ``Prefer: wait`` requests, still answers health checks and other users at once."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rest_framework.authtoken.models import Token

from scripts.run import commands
from tests.conftest import service_env
from tests.platform.factories import make_job
from tests.platform.processes import Process, answers, free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def web(tmp_path, flushed_redis):  # the rate limits of earlier runs forgotten
    bind = f"127.0.0.1:{free_port()}"
    base = f"http://{bind}"
    proc = Process(
        commands(bind)["web"],
        tmp_path / "web.log",
        service_env(PREFER_WAIT_MAX=8),
        lambda: answers(base + "/livez"),
    )
    yield base
    proc.stop()


def timed_get(url, **headers):
    started = time.monotonic()
    r = requests.get(url, headers=headers, timeout=10)
    return r, time.monotonic() - started


def test_it_answers_health_checks_and_other_users_while_one_user_holds_16_waiting_requests(web, alice, bob):
    job = make_job(alice)  # no worker runs: it stays queued, so every wait lasts its full 8 s
    alice_auth = f"Token {Token.objects.create(user=alice).key}"
    bob_auth = f"Token {Token.objects.create(user=bob).key}"
    timed_get(f"{web}/api/v1/jobs", Authorization=bob_auth)  # both processes past their first, slow request
    timed_get(f"{web}/api/v1/jobs", Authorization=bob_auth)
    with ThreadPoolExecutor(16) as pool:
        held = [
            pool.submit(timed_get, f"{web}/api/v1/jobs/{job.id}", Authorization=alice_auth, Prefer="wait=8")
            for _ in range(16)
        ]
        time.sleep(1.5)
        others = [timed_get(f"{web}/{path}") for path in ("livez", "readyz", "healthz") * 3]
        others += [timed_get(f"{web}/api/v1/jobs", Authorization=bob_auth) for _ in range(4)]
        waited = [f.result() for f in held]
    assert all(r.status_code == 200 and seconds < 2 for r, seconds in others), [
        (r.url, r.status_code, round(s, 2)) for r, s in others
    ]
    applied = [r for r, _ in waited if "Preference-Applied" in r.headers]
    assert all(r.status_code == 200 for r, _ in waited)
    assert len(applied) == 2  # PREFER_WAIT_PER_USER for 4 threads, across both processes; the rest at once
    assert sum(seconds < 2 for _, seconds in waited) == 14


def test_it_refuses_a_guesser_of_the_admins_password(web, make_user):
    import re

    make_user("root", is_staff=True, is_superuser=True)
    browser = requests.Session()
    page = browser.get(f"{web}/admin/login/", timeout=10).text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def attempt(password):
        form = {"username": "root", "password": password, "csrfmiddlewaretoken": csrf}
        return browser.post(f"{web}/admin/login/?next=/admin/", data=form, allow_redirects=False, timeout=10)

    codes = [attempt(f"guess-{i}").status_code for i in range(40)]
    assert codes[:10] == [200] * 10 and set(codes[10:]) == {429}
    refused = attempt("a-long-secret-7")  # the right one, while the lock holds
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 60
