"""Health for load balancers and orchestrators.

GET /healthz: database (a write), broker and storage, 503 when any fails. GET /livez: the process answers (no
dependencies: restarting it would not help them). GET /readyz: database and storage decide readiness; the
broker is reported but never fails it, since uploads are accepted and stored while Redis is down."""

import secrets

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.http import JsonResponse

from webapp import redis_clients


def check_database():
    """A write, rolled back: a database that answers reads but refuses writes (read-only, a full disk) fails."""
    from django.db.migrations.recorder import MigrationRecorder

    with transaction.atomic():
        MigrationRecorder(connection).Migration.objects.create(app="readyz", name="write-probe")
        transaction.set_rollback(True)


def check_broker():
    redis_clients.connect(settings.CELERY_BROKER_URL, timeout=1, connect_timeout=1).ping()


def check_storage():
    name = default_storage.save(f"healthz/{secrets.token_hex(8)}", ContentFile(b"ok"))
    default_storage.delete(name)


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


READY = ("database", "storage")  # what /readyz needs; the others are only reported


def run_checks():
    """{check name: "ok" or "failed: <reason>"} for every check."""
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as e:
            results[name] = f"failed: {type(e).__name__}: {e}"[:300]
    return results


def report(results, needed):
    ok = all(results[name] == "ok" for name in needed)
    return JsonResponse({"status": "ok" if ok else "failed", **results}, status=200 if ok else 503)


def healthz(request):
    return report(run_checks(), CHECKS)


def readyz(request):
    return report(run_checks(), READY)


def livez(request):
    return JsonResponse({"status": "ok"})
