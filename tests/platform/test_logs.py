"""LOG_FORMAT=json: one JSON object per line from a real gunicorn and a real worker, with the request id (a
trusted proxy's X-Request-ID only when well-formed, else a new one, echoed in the response) and the job id
on every line about a job, from the claim on (Celery's "received" line comes before the bell's claim and names
no job)."""

import json
import re
import sys
import time

import pytest
import requests
from django.test import Client

from tests.conftest import service_env, upload_file, wait_for
from tests.platform.processes import Process, answers, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def json_web(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "web.log"
    web = Process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "webapp.wsgi",
            "-c",
            "python:webapp.gunicorn_conf",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--threads",
            "2",
        ],
        log,
        service_env(LOG_FORMAT="json", TRUSTED_PROXIES="127.0.0.1"),
        lambda: answers(base + "/livez"),
    )
    yield base, log
    web.stop()


def test_it_logs_json_lines_with_the_proxys_request_id(json_web):
    base, log = json_web
    r = requests.get(base + "/no-such-page", headers={"X-Request-ID": "edge-7.a_b-c"})
    assert r.status_code == 404 and r.headers["X-Request-ID"] == "edge-7.a_b-c"
    for bad in ("has space", "x" * 65, "semi;colon"):
        echoed = requests.get(base + "/livez", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)  # refused, so a new one
    time.sleep(0.5)  # the access lines are written after the responses
    text = log.read_text()
    lines = json_lines(text)
    assert all(line.startswith("{") for line in text.splitlines() if line.strip()), text[-2000:]
    ours = [line for line in lines if line.get("request_id") == "edge-7.a_b-c"]
    assert {line["logger"] for line in ours} >= {"django.request", "gunicorn.access"}, ours
    assert any("Not Found: /no-such-page" in line["message"] for line in ours)


def test_it_ignores_x_request_id_from_an_untrusted_client(settings):
    settings.TRUSTED_PROXIES = []
    r = Client().get("/livez", HTTP_X_REQUEST_ID="edge-7")
    assert re.fullmatch(r"[0-9a-f]{32}", r["X-Request-ID"])
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert Client().get("/livez", HTTP_X_REQUEST_ID="edge-7")["X-Request-ID"] == "edge-7"


@pytest.mark.slow
def test_it_logs_the_job_id_on_every_worker_line_about_the_job(alice_api, start_worker):
    worker = start_worker(LOG_FORMAT="json")
    r = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")
    job_id = r.json()["id"]
    assert wait_for(job_id).status == "done"
    time.sleep(0.5)
    text = worker.output()
    after_start = text[text.index(" ready.") :].split("\n", 1)[1]
    assert all(line.startswith("{") for line in after_start.splitlines() if line.strip()), after_start[-2000:]
    about = [line for line in json_lines(text) if job_id in line["message"]]
    assert about and all(line.get("job_id") == job_id for line in about), about
    loggers = {line["logger"] for line in json_lines(text) if line.get("job_id") == job_id}
    assert {"celery.app.trace", "webapp.jobs.services.worker"} <= loggers, loggers
