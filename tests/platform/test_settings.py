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
    with pytest.raises(ImproperlyConfigured, match="A_NUMBER='4.5' is not a whole number"):
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
