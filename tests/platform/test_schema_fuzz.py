"""Schemathesis against a live server: every status an operation answers is listed in the schema by its
own number (not only through ``default``), with a body that matches its schema and content type."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db(transaction=True)
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance," \
         "status_is_listed_explicitly"


@override_settings(PREFER_WAIT_MAX=1)
def test_it_answers_only_statuses_the_schema_lists(live_server, alice, bob, tmp_path):
    from tests.platform.factories import make_job

    token = Token.objects.create(user=alice).key
    make_job(bob)  # a stranger's job: the fuzzer's ids must answer 404, never 403
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.platform.schemathesis_hooks", PYTHONPATH=os.getcwd())
    started = time.monotonic()
    run = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", f"{live_server.url}/api/v1/schema", "--checks", CHECKS,
         "--max-examples", "20", "--header", f"Authorization: Token {token}", "--workers", "2", "--seed", "1",
         "--generation-database", "none", "--no-color", "--request-timeout", "10", "--max-redirects", "0",
         "--phases", "examples,coverage,fuzzing"],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert seconds < 120, f"the fuzzing took {seconds:.0f} s"
