"""A private copy of the platform for the platform benchmarks: gunicorn and Celery workers started here.

It uses the machine's Redis (a database number nobody else uses, checked empty, flushed afterwards) and a
temporary PostgreSQL database (dropped afterwards), so nothing of anyone else's is touched. Every worker
runs in its own working directory (own VAR_DIR, temp folder and compiled-model cache), like a separate host;
only the database, the broker and the media folder (a shared volume) are shared.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from bench.common import OUT, PYTHON, ROOT

BIN = Path(PYTHON).parent
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DBS = (11, 10, 9, 8, 7)  # the first empty one is used


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pick_redis_db() -> int:
    import redis

    for db in REDIS_DBS:
        if redis.Redis.from_url(f"{REDIS}/{db}").dbsize() == 0:
            return db
    raise RuntimeError(f"no empty Redis database among {REDIS_DBS}")


def next_poll(job: dict, backoff: float) -> float:
    """webapp/static/app.js nextPoll(): the worker's ETA when it has one (0.25 to 3 s), else the backoff."""
    eta = job.get("eta_seconds")
    return backoff if eta is None else max(0.25, min(eta, 3.0))


class Stack:
    def __init__(self, name: str, models_dir: Path, **settings: str):
        import redis

        self.folder = OUT / f"{name}-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
        self.folder.mkdir(parents=True)
        self.redis_db = pick_redis_db()
        self.redis = redis.Redis.from_url(f"{REDIS}/{self.redis_db}")
        self.redis.set(
            "bench:owner", str(self.folder)
        )  # claims the database before anyone else sees it empty
        self.database = f"bench_{name.replace('-', '_')}_{secrets.token_hex(4)}"
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="webapp.settings",
            PYTHONPATH=str(ROOT),
            SECRET_KEY=secrets.token_urlsafe(40),
            DATABASE_URL=POSTGRES.rsplit("/", 1)[0] + "/" + self.database,
            REDIS_URL=f"{REDIS}/{self.redis_db}",
            MEDIA_ROOT=str(self.folder / "media"),
            VAR_DIR=str(self.folder / "web"),
            UPSCALE_MODELS_DIR=str(models_dir),
            **settings,
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.url = ""
        self.session = requests.Session()

    # --- lifetime ------------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True
        )
        return self

    def __exit__(self, *exc) -> None:
        import psycopg

        for name in list(self.procs):
            self.stop(name)
        for _ in range(2):  # again after a moment: late writes of stopping processes (kombu bindings)
            with contextlib.suppress(Exception):
                self.redis.flushdb()
            time.sleep(1)
        with contextlib.suppress(Exception), psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        for folder in [self.folder / "media", *self.folder.glob("*/ov-cache")]:  # the logs stay
            shutil.rmtree(folder, ignore_errors=True)

    def _start(self, name: str, cmd: list[str], cwd: Path, env: dict) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{name}.log", "w") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process and the children it forked
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def start_web(self, workers: int = 2, threads: int = 4) -> str:
        port = free_port()
        self._start(
            "web",
            [
                str(BIN / "gunicorn"),
                "webapp.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            ROOT,
            self.env,
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self.url
            if time.monotonic() > deadline or self.procs["web"].poll() is not None:
                raise RuntimeError(f"the web server did not start; see {self.folder / 'web.log'}")
            time.sleep(0.2)

    def start_worker(self, name: str, threads: int, cpus: str | None = None) -> None:
        """One Celery worker (one pool process) in its own folder, like a host of its own."""
        home = self.folder / name
        env = dict(
            self.env,
            VAR_DIR=str(home / "var"),
            WORKER_TMP_DIR=str(home / "tmp"),
            UPSCALE_CACHE_DIR=str(home / "ov-cache"),
            UPSCALE_THREADS=str(threads),
        )
        cmd = [
            str(BIN / "celery"),
            "-A",
            "webapp",
            "worker",
            "-Q",
            "upscale",
            "-n",
            f"{name}@%h",
            "-c",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        self._start(name, cmd, home, env)
        log = self.folder / f"{name}.log"
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text():
            if time.monotonic() > deadline or self.procs[name].poll() is not None:
                raise RuntimeError(f"worker {name} did not start; see {log}")
            time.sleep(0.2)

    # --- the API ---------------------------------------------------------------------------------------

    def register(self, username: str | None = None) -> str:
        username = username or f"bench-{secrets.token_hex(4)}"
        r = requests.post(
            self.url + "/api/v1/auth/register",
            json={"username": username, "password": secrets.token_urlsafe(16)},
            timeout=30,
        )
        r.raise_for_status()
        return r.json()["token"]

    def use(self, token: str) -> None:
        self.session.headers["Authorization"] = f"Token {token}"

    def submit(self, image: bytes, scale: int, name: str = "bench.png", network: str | None = None) -> dict:
        r = self.session.post(
            self.url + "/api/v1/jobs/",
            files={"image": (name, image, "image/png")},
            data={"scale": str(scale), **({"network": network} if network else {})},
            timeout=60,
        )
        if r.status_code != 201:
            raise RuntimeError(f"submit refused: {r.status_code} {r.text[:200]}")
        return r.json()

    def job(self, job_id: str) -> dict:
        r = self.session.get(f"{self.url}/api/v1/jobs/{job_id}", timeout=30)
        r.raise_for_status()
        return r.json()

    def wait_done(self, job_id: str, poll: float | None = None, timeout: float = 600) -> dict:
        """Poll every ``poll`` seconds, or (None) as the job page does: see next_poll()."""
        deadline = time.monotonic() + timeout
        backoff = 0.5
        while True:
            job = self.job(job_id)
            if job["status"] not in ("queued", "running"):
                if job["status"] != "done":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
                return job
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            backoff = min(backoff * 1.2, 3.0)
            time.sleep(poll if poll is not None else next_poll(job, backoff))

    def count(self, status: str) -> int:
        r = self.session.get(f"{self.url}/api/v1/jobs/", params={"status": status}, timeout=30)
        r.raise_for_status()
        return r.json()["count"]
