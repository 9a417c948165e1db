"""The settings' environment helpers read what they can and refuse the rest loudly: a value they cannot
read stops the process at start with the variable named, instead of quietly becoming a default."""

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.conftest import ROOT, service_env
from webapp import settings as project


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("yes", True), ("On", True), ("TRUE", True), ("0", False), ("off", False), ("", "default")],
)
def test_it_reads_a_yes_or_no(monkeypatch, value, expected):
    monkeypatch.setenv("SOME_FLAG", value)
    assert project.env_bool("SOME_FLAG", "default") == expected


@pytest.mark.parametrize("value", ["enable", "2", "y e s", "-1"])
def test_it_refuses_a_yes_or_no_it_cannot_read(monkeypatch, value):
    monkeypatch.setenv("HTTPS", value)
    with pytest.raises(ImproperlyConfigured, match=f"HTTPS={value!r} is not a yes or no"):
        project.env_bool("HTTPS")


def test_it_reads_numbers_and_refuses_what_is_not_one(monkeypatch):
    monkeypatch.setenv("A_NUMBER", " 42 ")
    assert project.env_int("A_NUMBER", 1) == 42 and project.env_float("A_NUMBER", 1) == 42.0
    monkeypatch.setenv("A_NUMBER", "")
    assert project.env_int("A_NUMBER", 7) == 7
    monkeypatch.setenv("A_NUMBER", "4.5")
    assert project.env_float("A_NUMBER", 1) == 4.5
    with pytest.raises(ImproperlyConfigured, match=r"A_NUMBER='4\.5' is not a whole number"):
        project.env_int("A_NUMBER", 1)
    monkeypatch.setenv("A_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="A_NUMBER='ten' is not a number"):
        project.env_float("A_NUMBER", 1)


def test_https_enable_stops_the_site_at_start_naming_the_variable():
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=service_env(HTTPS="enable"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "HTTPS='enable' is not a yes or no" in out.stderr


def test_the_worker_builds_the_engine_configuration_from_the_settings(settings, tmp_path):
    from upscale_worker.engine.config import EngineConfig
    from webapp.jobs.services.worker import engine_config

    settings.UPSCALE_MODELS_DIR, settings.UPSCALE_CACHE_DIR = tmp_path / "models", tmp_path / "cache"
    settings.UPSCALE_PRECISION, settings.UPSCALE_THREADS, settings.UPSCALE_TILE = "int8", 0, (280, 64)
    assert engine_config() == EngineConfig(tmp_path / "models", tmp_path / "cache", "int8", None, (64, 280))


def test_an_unknown_precision_stops_the_site_at_start():
    out = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=service_env(UPSCALE_PRECISION="fp16", UPSCALE_TILE="128,x"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "UPSCALE_PRECISION='fp16' is not one of f32, bf16, int8" in out.stderr


def test_the_site_opens_redis_clients_in_one_module_each_with_the_network_options():
    openers = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "webapp").rglob("*.py")
        if "Redis.from_url" in p.read_text() or "redis.Redis(" in p.read_text()
    ]
    assert openers == ["webapp/redis_clients.py"]
    from webapp import ratelimit, redis_clients
    from webapp.jobs import queue

    for client in (queue.broker(), ratelimit.connection(), redis_clients.connect(project.REDIS_URL, 1, 1)):
        options = client.connection_pool.connection_kwargs
        assert options["socket_keepalive"] is True and options["socket_keepalive_options"]
