"""A worker keeps its PostgreSQL connection between tasks (Django's per-request policy, not Celery's)."""

import pytest

from tests.conftest import upload_file, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def test_the_worker_keeps_its_database_connection_between_jobs(alice_api):
    """Celery's Django fixup would open a new PostgreSQL connection for every task (7 ms of each job)."""
    from django.db import connection

    def other_backends():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
            return {pid for (pid,) in cursor.fetchall()}

    def run_a_job():
        r = alice_api.post("/api/v1/jobs", {"image": upload_file(), "scale": 2}, format="multipart")
        assert wait_for(r.json()["id"]).status == "done"

    assert connection.vendor == "postgresql"  # the integration suite's database (tests/conftest.py)
    run_a_job()
    kept = other_backends()
    assert kept  # the worker's connection outlived its task
    for _ in range(3):
        run_a_job()
    assert other_backends() == kept
