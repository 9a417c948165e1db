"""Schemathesis against a live server: every status an operation answers is listed in the schema by its
own number (not only through ``default``), with a body that matches its schema and content type."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db(transaction=True)
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "status_is_listed_explicitly"
)


@override_settings(PREFER_WAIT_MAX=1)
def test_it_answers_only_statuses_the_schema_lists(live_server, alice, bob, tmp_path):
    from tests.platform.factories import make_job

    token = Token.objects.create(user=alice).key
    make_job(bob)  # a stranger's job: the fuzzer's ids must answer 404, never 403
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.platform.schemathesis_hooks", PYTHONPATH=os.getcwd())
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{live_server.url}/api/v1/schema",
        "--checks",
        CHECKS,
        "--max-examples",
        "20",
        "--header",
        f"Authorization: Token {token}",
        "--workers",
        "1",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
        "--max-redirects",
        "0",
        "--phases",
        "examples,coverage,fuzzing",
    ]
    # Three processes of one thread each (Schemathesis' worker threads trip CPython 3.11.7's AST recursion check,
    # gh-106905, inside Hypothesis), each fuzzing a share of the operations.
    shares = [
        ["--include-path-regex", "^/api/v1/jobs"],
        ["--include-path-regex", "^/api/v1/webhooks"],
        ["--exclude-path-regex", "^/api/v1/(jobs|webhooks)"],
    ]
    started = time.monotonic()
    runs = [
        subprocess.Popen(
            command + share,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )  # its cache folder goes there, not into the repository
        for share in shares
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    seconds = time.monotonic() - started
    for run, output in zip(runs, outputs):
        assert run.returncode == 0, output[-8000:]
        assert not re.search(r"\b0 selected", output)
        print(re.findall(r"(Coverage|Fuzzing|Examples) \(in ([\d.]+)s\)", output))
    assert seconds < 120, f"the fuzzing took {seconds:.0f} s"
