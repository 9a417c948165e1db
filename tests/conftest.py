"""Shared fixtures. Integration tests run a REAL Celery worker subprocess against the real Redis
(a dedicated db, flushed per session) and the test database with committed rows.

The database is DATABASE_URL when set; otherwise the machine's PostgreSQL at 127.0.0.1:5432 when it
answers, else the default SQLite.
"""

import atexit
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import dj_database_url
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
REDIS_TEST_DB = int(os.environ.get("REDIS_TEST_DB", "15"))
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
TEST_SETTINGS = {
    "JOB_LEASE_SECONDS": "6",
    "JOB_PROGRESS_INTERVAL": "0.2",
    "REPUBLISH_AFTER": "2",
    "UPSCALE_THREADS": "1",
}


def configure_engine(monkeypatch, **changes):
    """The engine configured with ``changes`` (EngineConfig's fields) for one test, restored after it."""
    import dataclasses

    from upscale_worker.engine import config

    monkeypatch.setattr(config, "_current", dataclasses.replace(config.current(), **changes))


def answers(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def redis_url(db=REDIS_TEST_DB):
    parsed = urlparse(settings.REDIS_URL)
    return urlunparse(parsed._replace(path=f"/{db}"))


def scratch(prefix):
    """A temporary folder removed when the test session ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def models_dir():
    """A snapshot of the real x2 model (the models/ folder may be rewritten while tests run), or, on a
    machine without trained weights, a tiny nearest-neighbour x2 IR made here; each with a stand-in
    JPEG-aware twin (with_jpeg_twin)."""
    import hashlib

    folder = scratch("upscale-test-models-")
    try:
        manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
        entries = [m for m in manifest["models"] if m["scale"] == 2 and m.get("variant", "clean") == "clean"]
        for entry in entries:
            for kind, name in entry["files"].items():
                shutil.copyfile(ROOT / "models" / name, folder / name)
                assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"][kind]
        if entries:
            (folder / "manifest.json").write_text(json.dumps({"models": with_jpeg_twin(entries)}))
            return folder
    except (OSError, ValueError, KeyError, AssertionError):
        pass
    subprocess.run([sys.executable, "-c", FAKE_MODEL, str(folder)], check=True, cwd=ROOT)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({"models": with_jpeg_twin(manifest["models"])}))
    return folder


def with_jpeg_twin(entries):
    """The clean entries and, for each, a "jpeg" variant entry naming the same IR files: the platform's tests
    check which variant a worker chose and records, not what the weights do (tests/engine does that)."""
    clean = [{**e, "variant": "clean"} for e in entries]
    twins = [
        {
            **e,
            "variant": "jpeg",
            "name": e["name"].replace("_x2", "_x2_jpeg", 1) if "_x2" in e["name"] else e["name"] + "-jpeg",
        }
        for e in clean
    ]
    return clean + twins


FAKE_MODEL = """
import hashlib, json, sys
from pathlib import Path
import numpy as np
import openvino as ov
import openvino.opset13 as ops
out = Path(sys.argv[1])
x = ops.parameter([1, 3, -1, -1], ov.Type.f32, name="input")
y = ops.interpolate(x, ops.constant(np.array([2.0, 2.0], np.float32)), "nearest", "scales",
                    axes=ops.constant(np.array([2, 3], np.int64)))
ov.save_model(ov.Model([y], [x], "nearest-x2"), out / "nearest-x2.xml")
digest = {k: hashlib.sha256((out / f"nearest-x2.{k}").read_bytes()).hexdigest() for k in ("xml", "bin")}
files = {"xml": "nearest-x2.xml", "bin": "nearest-x2.bin"}
entry = {"name": "nearest-x2", "scale": 2, "weights": "fp16", "files": files, "sha256": digest}
(out / "manifest.json").write_text(json.dumps({"models": [entry]}))
"""
MODELS_DIR = models_dir()


def _configure():
    """Point this process at the test services before any connection is made."""
    if "DATABASE_URL" not in os.environ and answers("127.0.0.1", 5432):
        from django.db import connections

        db = settings.DATABASES["default"]
        db.clear()
        db.update(dj_database_url.parse(LOCAL_POSTGRES))
        connections.__dict__.pop("settings", None)  # re-read, with Django's defaults
        try:
            del connections["default"]  # a wrapper made before this point would still be SQLite's
        except AttributeError:
            pass
    url = redis_url()
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CACHES["default"]["LOCATION"] = redis_url(REDIS_TEST_DB - 1)  # cleared before each test
    settings.MEDIA_ROOT = scratch("upscale-test-media-")
    settings.WORKER_TMP_DIR = scratch("upscale-test-tmp-")
    settings.MODEL_MANIFEST = MODELS_DIR / "manifest.json"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests
    for name, value in TEST_SETTINGS.items():
        if hasattr(settings, name):
            setattr(settings, name, type(getattr(settings, name))(value))


_configure()


def database_url():
    """The test database (after pytest-django created it) as a URL for subprocesses."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    from urllib.parse import quote

    auth = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    host = quote(db["HOST"] or "127.0.0.1", safe="")  # a socket folder is percent-encoded
    return f"postgres://{auth}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def service_env(**extra):
    env = dict(os.environ)
    env.update(TEST_SETTINGS)
    env.update(
        DJANGO_SETTINGS_MODULE="webapp.settings",
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        WORKER_TMP_DIR=str(settings.WORKER_TMP_DIR),
        UPSCALE_MODELS_DIR=str(MODELS_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Worker:
    """A `celery -A webapp worker -Q upscale` subprocess in its own process group (``queue="webhooks",
    pool="threads"`` makes it the webhook sender)."""

    def __init__(self, log_dir, concurrency=1, queue="upscale", pool=None, **env):
        self.name = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.log = Path(log_dir) / f"{self.name.split('@')[0]}.log"
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webapp",
            "worker",
            "-Q",
            queue,
            "-n",
            self.name,
            "-c",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *(["--pool", pool] if pool else []),
        ]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=service_env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready()

    def output(self):
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while " ready." not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def kill(self):
        """kill -9 the whole worker (main process and pool children)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def stop(self):
        self.kill()  # tests need no warm shutdown: this is faster, and jobs survive it anyway


@pytest.fixture(scope="session")
def flushed_redis():
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, flushed_redis, tmp_path_factory):
    """One worker for a whole module; modules whose tests kill workers start their own."""
    w = Worker(tmp_path_factory.mktemp("workers"))
    yield w
    w.stop()


@pytest.fixture
def start_worker(django_db_setup, flushed_redis, tmp_path):
    started = []

    def start(**kwargs):
        started.append(Worker(tmp_path, **kwargs))
        return started[-1]

    yield start
    for w in started:
        w.stop()


# --- Images, users, clients ------------------------------------------------------------------------


def image_bytes(width=48, height=48, fmt="PNG", mode="RGB", **save):
    from PIL import Image

    im = Image.new(mode, (width, height))
    px = im.load()
    for y in range(height):
        for x in range(width):
            v = (x * 7 + y * 13) % 256
            px[x, y] = (
                (v, (x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1))[: len(mode)]
                if mode != "L"
                else v
            )
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def upload_file(name="photo.png", data=None, **kw):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data if data is not None else image_bytes(**kw), content_type="image/png")


@pytest.fixture
def make_user(django_user_model):
    def make(username, password="a-long-secret-7", **fields):
        return django_user_model.objects.create_user(username, f"{username}@example.com", password, **fields)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def token_client(user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def alice_api(alice):
    return token_client(alice)


@pytest.fixture
def bob_api(bob):
    return token_client(bob)


@pytest.fixture
def alice_web(client, alice):
    client.force_login(alice)
    return client


def wait_for(job_id, statuses=("done", "failed", "cancelled"), timeout=60, poll=0.05):
    """Poll the row (like the browser does) until the job reaches one of ``statuses``."""
    from webapp.jobs.models import Job

    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if job.status in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} stayed {job.status} ({job.progress}%) for {timeout} s: {job.error}"
            )
        time.sleep(poll)


def media_files(kind=""):
    root = Path(settings.MEDIA_ROOT) / kind
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(autouse=True)
def _fresh_cache_and_media(request):
    from django.core.cache import cache

    if not {"platform", "browser"} & set(request.node.path.parts):
        yield
        return
    cache.clear()  # rate-limit counters
    yield
    for child in Path(settings.MEDIA_ROOT).iterdir():  # folders of kinds, and a file saved at the root
        shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_deadlock():
    """Django empties the tables after each transactional test (one TRUNCATE of them all) while a module's
    worker processes may be answering a doorbell (SELECT ... FOR UPDATE SKIP LOCKED over jobs and parts);
    PostgreSQL then breaks the lock cycle by failing one of the two, sometimes the TRUNCATE. The flush is one
    transaction, rolled back whole, so it is run again (at most three times)."""
    from django.core.management.base import CommandError
    from django.db.utils import OperationalError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        for attempt in range(3):
            try:
                return original(self)
            except CommandError as e:
                if (
                    attempt == 2
                    or not isinstance(e.__cause__, OperationalError)
                    or "deadlock" not in str(e.__cause__)
                ):
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original
