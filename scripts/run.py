"""`make run`: the whole platform on one machine: web server, one worker, the webhook sender, the beat that runs
the sweepers.

Uses the Redis at REDIS_URL (default redis://127.0.0.1:6379/0) or starts a private one under var/.
Ctrl-C (or SIGTERM) stops everything this command started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from scripts.services import ROOT, VAR, ensure_redis

BIN = os.path.dirname(sys.executable)


def commands(bind: str) -> dict[str, list[str]]:
    celery = [os.path.join(BIN, "celery"), "-A", "webapp"]
    return {
        "web": [
            os.path.join(BIN, "gunicorn"),
            "webapp.wsgi",
            "-c",
            "python:webapp.gunicorn_conf",
            "--bind",
            bind,
            "--workers",
            "2",
        ],
        "worker": [*celery, "worker", "-Q", "upscale", "--loglevel", "INFO", "--concurrency", "1"],
        # Webhook deliveries wait on the network, not the CPU: threads, apart from the upscale worker.
        "webhooks": [
            *celery,
            "worker",
            "-Q",
            "webhooks",
            "--pool",
            "threads",
            "--concurrency",
            "8",
            "-n",
            "webhooks@%h",
            "--loglevel",
            "INFO",
        ],
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", str(VAR / "celerybeat-schedule")],
    }


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def main() -> int:
    os.environ["REDIS_URL"] = ensure_redis()
    bind = os.environ.get("BIND", "127.0.0.1:8000")
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    procs = {name: subprocess.Popen(cmd, cwd=ROOT) for name, cmd in commands(bind).items()}
    print(f"\nThe platform is up: open http://{bind}/  (Ctrl-C stops it)\n", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored: Ctrl-C (or the
    # test's SIGINT) would not stop the platform started from a script run with `&`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while all(p.poll() is None for p in procs.values()):
            time.sleep(0.5)
        dead = [name for name, p in procs.items() if p.poll() is not None]
        print(f"{', '.join(dead)} stopped; stopping the rest", flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20  # one deadline for all: five processes never wait 20 s each
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
