"""`make run` installs the runtime only: requirements.txt brings no training or test stack, and the `run`
target depends on nothing but its stamp (which depends on nothing but requirements.txt)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "nncf", "playwright", "onnx", "onnxruntime", "moto", "pgserver", "pytest", "locust"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def prerequisites(target: str) -> list[str]:
    """The target's prerequisites as make reads them (make's database, nothing is run)."""
    db = subprocess.run(["make", "-n", "-p", target], cwd=ROOT, capture_output=True, text=True).stdout
    for line in db.splitlines():
        if line.startswith(f"{target}:") and not line.startswith(f"{target}::"):
            return line.split(":", 1)[1].split("|")[0].split()
    raise AssertionError(f"no rule for {target}")


def test_it_installs_no_torch_nncf_or_playwright_for_the_runtime():
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "-r",
            "requirements.txt",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    names = {normalized(item["metadata"]["name"]) for item in json.loads(report.stdout)["install"]}
    assert {"django", "celery", "openvino", "gunicorn", "prometheus-client"} <= names
    assert not names & HEAVY, names & HEAVY


def test_it_makes_run_depend_on_the_runtime_requirements_only():
    assert prerequisites("run") == [".venv/.installed-run"]
    assert prerequisites(".venv/.installed-run") == ["requirements.txt"]
    assert ".venv/.installed-dev" in prerequisites("test")
