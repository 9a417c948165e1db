"""/livez, /readyz and /healthz with a private Redis that is stopped (never the machine's)."""

import pytest

from tests.platform.processes import private_redis  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def test_it_answers_all_three_while_everything_is_up(client, settings, private_redis):
    settings.CELERY_BROKER_URL = private_redis["url"]
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "database": "ok", "broker": "ok", "storage": "ok"}
    assert client.get("/healthz").status_code == 200


def test_it_stays_ready_but_reports_the_broker_when_redis_stops(client, settings, private_redis):
    settings.CELERY_BROKER_URL = private_redis["url"]
    private_redis["proc"].stop()
    live, ready, health = client.get("/livez"), client.get("/readyz"), client.get("/healthz")
    assert live.status_code == 200
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert ready.json()["broker"].startswith("failed: ConnectionError")
    assert health.status_code == 503 and health.json()["broker"].startswith("failed")


def test_it_is_not_ready_without_storage(client, monkeypatch, tmp_path):
    from django.core.files.storage import FileSystemStorage, default_storage

    blocker = tmp_path / "media"
    blocker.write_text("a file where the media folder should be")
    monkeypatch.setattr(default_storage, "_wrapped", FileSystemStorage(location=blocker))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["storage"].startswith("failed")
    assert client.get("/livez").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_it_is_not_ready_when_the_database_refuses_writes(client):
    from django.db import connection
    from django.db.migrations.recorder import MigrationRecorder

    read_only = {
        "postgresql": ("SET default_transaction_read_only = on", "SET default_transaction_read_only = off")
    }
    read_only["sqlite"] = ("PRAGMA query_only = ON", "PRAGMA query_only = OFF")
    on, off = read_only[connection.vendor]
    assert client.get("/readyz").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(
            on
        )  # reads still answer, as on a replica promoted wrongly or a disk remounted read-only
    try:
        ready = client.get("/readyz")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(off)
    assert ready.status_code == 503 and ready.json()["database"].startswith("failed")
    assert not MigrationRecorder.Migration.objects.filter(app="readyz").exists()  # the probe leaves nothing
