"""GET /healthz: database, broker and storage, for load balancers and compose healthchecks."""

import secrets

import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_broker():
    redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1).ping()


def check_storage():
    name = default_storage.save(f"healthz/{secrets.token_hex(8)}", ContentFile(b"ok"))
    default_storage.delete(name)


CHECKS = {"database": check_database, "broker": check_broker, "storage": check_storage}


def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as e:
            results[name] = f"failed: {type(e).__name__}: {e}"[:300]
    ok = all(v == "ok" for v in results.values())
    return JsonResponse({"status": "ok" if ok else "failed", **results}, status=200 if ok else 503)
