"""The shipped nginx config (docker/nginx/) run by Debian's nginx on loopback in front of gunicorn as `make run`
starts it: slow clients do not stall health checks, the largest batch body passes, nginx's own refusals under
/api/ are the API's JSON, and batch ZIPs stream through."""

import io
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from pathlib import Path

import pytest
import requests
import yaml
from django.conf import settings
from rest_framework.authtoken.models import Token

from scripts.run import commands
from tests.conftest import service_env
from tests.platform.factories import make_job
from tests.platform.processes import Process, answers, free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "docker" / "nginx" / "upscale.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.django_db(transaction=True)


def render(template, **values):
    """What the official image's envsubst does with the variables it is given."""
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
    assert "${" not in text
    return text


@pytest.fixture
def site(tmp_path):
    """gunicorn (make run's command, trusting the proxy) and nginx with the shipped config in front of it."""
    assert Path(NGINX).exists(), "Debian's nginx is needed (make system-deps installs it)"
    web_port, proxy_port = free_port(), free_port()
    web = Process(
        commands(f"127.0.0.1:{web_port}")["web"],
        tmp_path / "web.log",
        service_env(TRUSTED_PROXIES="127.0.0.1", MAX_BATCH_MB="1"),
        lambda: answers(f"http://127.0.0.1:{web_port}/livez"),
    )
    conf = render(
        TEMPLATE.read_text(),
        UPSCALE_WEB=f"127.0.0.1:{web_port}",
        PROXY_PORT=f"127.0.0.1:{proxy_port}",
        CLIENT_MAX_BODY_SIZE="2m",  # MAX_BATCH_MB + 1 MiB
    )
    (tmp_path / "upscale.conf").write_text(conf)
    temp = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"{'user root;' if os.geteuid() == 0 else ''} daemon off; pid {tmp_path}/nginx.pid;"
        f"error_log {tmp_path}/error.log info; events {{ worker_connections 1024; }}"
        f"http {{ access_log {tmp_path}/access.log; {temp} include {tmp_path}/upscale.conf; }}"
    )
    base = f"http://127.0.0.1:{proxy_port}"
    proxy = Process(
        [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        tmp_path / "nginx.log",
        None,
        lambda: answers(base + "/livez"),
    )
    yield {"base": base, "direct": f"http://127.0.0.1:{web_port}", "web": web}
    proxy.stop()
    web.stop()


class SlowClients:
    """Connections that send their request a byte a second: half stuck in the headers, half in a body."""

    def __init__(self, host, port, count):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.drip, args=(host, port, i % 2)) for i in range(count)]
        for t in self.threads:
            t.start()
        time.sleep(1.5)  # every one connected and started

    def drip(self, host, port, in_body):
        try:
            with socket.create_connection((host, port), timeout=30) as s:
                head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                s.sendall((head + "\r\n").encode() if in_body else head.encode())
                while not self.stop.wait(1):
                    s.sendall(b"x" if in_body else b"X-Slow: 1\r\n"[:1])
        except OSError:
            pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)


def timed(url, **kwargs):
    started = time.monotonic()
    try:
        r = requests.get(url, timeout=3, **kwargs)
        return r.status_code, time.monotonic() - started
    except requests.RequestException:
        return None, time.monotonic() - started


def test_slow_clients_stall_gunicorn_alone_but_not_behind_nginx(site):
    port = int(site["base"].rsplit(":", 1)[1])
    slow = SlowClients("127.0.0.1", port, 24)
    try:
        checks = [timed(f"{site['base']}/{path}") for path in ("livez", "readyz", "healthz") * 5]
    finally:
        slow.close()
    assert all(code == 200 and seconds < 2 for code, seconds in checks), checks

    direct_port = int(site["direct"].rsplit(":", 1)[1])
    slow = SlowClients("127.0.0.1", direct_port, 24)  # the same clients straight at gunicorn's 2 x 4 threads
    try:
        direct = [timed(f"{site['direct']}/livez") for _ in range(3)]
    finally:
        slow.close()
    assert any(code is None for code, _ in direct), direct  # why compose publishes only nginx


def test_the_largest_batch_passes_and_a_larger_body_is_refused_as_json(site, alice):
    auth = {"Authorization": f"Token {Token.objects.create(user=alice).key}"}
    within = requests.post(
        f"{site['base']}/api/v1/batches",
        headers=auth,
        files={"images": ("a.png", b"x" * 1_400_000)},
        timeout=30,
    )
    assert within.status_code != 413 and within.headers["X-Request-ID"], within.text  # the web's own answer
    over = requests.post(
        f"{site['base']}/api/v1/batches",
        headers=auth,
        files={"images": ("a.png", b"x" * 2_200_000)},
        timeout=30,
    )
    assert over.status_code == 413 and over.json()["code"] == "too_large"
    assert over.headers["Content-Type"] == "application/json"


def test_nginx_drops_idle_upstream_connections_before_gunicorn_does():
    from webapp import gunicorn_conf

    nginx_idle = re.search(
        r"upstream upscale_web \{.*?keepalive_timeout (\d+)s;", TEMPLATE.read_text(), re.S
    ).group(1)
    assert int(nginx_idle) < gunicorn_conf.keepalive


def test_the_shipped_compose_file_gives_nginx_the_largest_batch_body():
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    proxy = compose["services"]["proxy"]
    assert (
        proxy["environment"]["CLIENT_MAX_BODY_SIZE"]
        == f"${{CLIENT_MAX_BODY_SIZE:-{settings.MAX_BATCH_MB + 1:g}m}}"
    )
    assert "ports" not in compose["services"]["web"]  # only nginx is published
    assert proxy["ports"] == ["${WEB_PORT:-8000}:8080"] and proxy["environment"]["PROXY_PORT"] == "8080"


def test_a_batch_zip_streams_through_and_nginx_answers_json_when_the_web_is_down(site, alice):
    from webapp.integrations.models import Batch

    job = make_job(alice, "done")
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(job)
    auth = {"Authorization": f"Token {Token.objects.create(user=alice).key}"}
    r = requests.get(f"{site['base']}/api/v1/batches/{batch.id}/download", headers=auth, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(r.content)).namelist() == [job.result_name]

    site["web"].stop()
    down = requests.get(f"{site['base']}/api/v1/jobs", headers=auth, timeout=10)
    assert down.status_code == 503 and down.json()["code"] == "unavailable" and down.headers["Retry-After"]
