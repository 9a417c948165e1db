"""`make run` on a machine as a newcomer has it: no Redis where REDIS_URL points, nothing configured.

It must start a private Redis, the web server, a worker and the beat; an image uploaded through the API
must finish; stopping the command must stop everything it started.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from PIL import Image

from scripts.services import free_port, wait_until_answers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform(tmp_path):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        VAR_DIR=str(tmp_path / "var"),
        BIND=f"127.0.0.1:{port}",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )  # nothing answers there
    proc = subprocess.Popen([sys.executable, "-m", "scripts.run"], cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}", seconds=120)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.effect_mandelbrot((40, 30), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def wait_for_done(api: str, headers: dict, job_id: str, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = requests.get(f"{api}/jobs/{job_id}", headers=headers, timeout=10).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {seconds} s: {job}")


def test_make_run_brings_up_a_platform_that_finishes_an_api_upload(platform):
    proc, url = platform
    api = f"{url}/api/v1"
    children = psutil.Process(proc.pid).children(recursive=True)
    names = " ".join(" ".join(c.cmdline()) for c in children)
    assert "redis-server" in names and "gunicorn" in names and "worker" in names and "beat" in names
    assert "-Q webhooks --pool threads" in names  # the webhook sender, apart from the upscale worker

    # The first request waits for the web process' lazy imports while the worker and the beat start beside it:
    # over 10 s on a loaded two-core machine.
    token = requests.post(
        f"{api}/auth/register", data={"username": "newcomer", "password": "a-long-secret-7"}, timeout=60
    ).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    created = requests.post(
        f"{api}/jobs",
        headers=headers,
        data={"scale": 2},
        files={"image": ("m.png", png_bytes(), "image/png")},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    job = wait_for_done(api, headers, created.json()["id"])
    assert job["status"] == "done", job
    assert (job["output_width"], job["output_height"]) == (80, 60)
    result = requests.get(f"{api}/jobs/{job['id']}/result", headers=headers, timeout=30)
    assert Image.open(io.BytesIO(result.content)).size == (80, 60)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [c.cmdline() for c in alive]
