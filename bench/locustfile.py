"""Locust users for bench/web.py: each uploads a small PNG now and then and polls its latest job.

Never import this module with the engine or torch in the same process (Locust's gevent patches threads).
"""

import itertools
import os
from pathlib import Path

from locust import HttpUser, between, task

TOKENS = os.environ["BENCH_TOKENS"].split(",")
IMAGE = Path(os.environ["BENCH_IMAGE"]).read_bytes()
NEXT = itertools.count()


class Uploader(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"Token {TOKENS[next(NEXT) % len(TOKENS)]}"
        self.jobs = []
        self.upload()

    @task(1)
    def upload(self):
        with self.client.post(
            "/api/v1/jobs/",
            files={"image": ("small.png", IMAGE, "image/png")},
            data={"scale": "2"},
            name="POST /api/v1/jobs/",
            catch_response=True,
        ) as r:
            if r.status_code == 201:
                self.jobs.append(r.json()["id"])
                r.success()
            else:
                r.failure(f"{r.status_code}: {r.text[:100]}")

    @task(5)
    def poll(self):
        if self.jobs:
            self.client.get(f"/api/v1/jobs/{self.jobs[-1]}", name="GET /api/v1/jobs/<id>")

    @task(1)
    def history(self):
        self.client.get("/api/v1/jobs/", name="GET /api/v1/jobs/ (list)")
