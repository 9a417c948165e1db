"""Safe retries: ``Idempotency-Key`` on the create endpoints (the IETF draft's header).

Keys are per user. The fingerprint hashes the path, the sorted fields and each file's sha256 (not the raw body,
whose multipart boundary changes on every retry). The key's row is committed before anything is stored; the same
key and fingerprint within IDEMPOTENCY_HOURS replays the first answer when a retry must see it again (2xx, and
the 4xx that the request alone decides); a refusal that may pass later (429, 409, 5xx...) is not kept, so the
retry runs again. Another fingerprint answers 422, and a retry while the first request runs answers 409.
"""

import hashlib
import json
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from webapp.errors import error
from webapp.integrations.models import IdempotencyKey

HEADER = "Idempotency-Key"
PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="Retry safely: the same key and request within 24 h replays the first answer",
)


def file_digest(f):
    h = hashlib.sha256()
    f.seek(0)
    for block in f.chunks():
        h.update(block)
    f.seek(0)
    return h.hexdigest()


def fingerprint(request):
    """sha256 hex over the path, the sorted form fields and each file's sha256."""
    fields = sorted((k, str(v)) for k in request.POST for v in request.POST.getlist(k))
    files = sorted((k, file_digest(f)) for k in request.FILES for f in request.FILES.getlist(k))
    if not request.POST and not request.FILES and isinstance(request.data, dict):  # a JSON body
        fields = sorted((k, json.dumps(v, sort_keys=True)) for k, v in request.data.items())
    return hashlib.sha256(json.dumps([request.path.rstrip("/"), fields, files]).encode()).hexdigest()


def begin(user, key, print_):
    """(row, None) when this request owns the key now, else (None, the answer to give)."""
    IdempotencyKey.objects.filter(
        owner=user, key=key, created_at__lt=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_HOURS)
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(owner=user, key=key, fingerprint=print_), None
    except IntegrityError:
        row = IdempotencyKey.objects.filter(owner=user, key=key).first()
    if row is not None and row.fingerprint != print_:
        return None, error(
            "This Idempotency-Key was used with a different request.", 422, "idempotency_mismatch"
        )
    if row is None or row.status_code is None:
        return None, error(
            "A request with this Idempotency-Key is still in flight; retry later.",
            409,
            "idempotency_in_flight",
        )
    return None, Response(row.body, status=row.status_code, headers={"Idempotent-Replayed": "true"})


# The 4xx that the request alone decides: the same request gets the same answer, whenever it is sent.
REQUEST_DETERMINED = {400, 404, 405, 410, 413, 414, 415, 422}


def keep(row, response):
    """Keep the first answer when it is final (2xx, REQUEST_DETERMINED); otherwise forget the key, so that a
    retry (after Retry-After, or once the quota frees) runs again instead of replaying a refusal."""
    if not (200 <= response.status_code < 300 or response.status_code in REQUEST_DETERMINED):
        row.delete()
        return
    row.status_code = response.status_code
    row.body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    row.save(update_fields=["status_code", "body"])


def idempotent(view):
    """Decorate a DRF view method that creates something."""

    @wraps(view)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(self, request, *args, **kwargs)
        if not 1 <= len(key) <= 255:
            return error("An Idempotency-Key has 1 to 255 characters.", 400)
        row, answer = begin(request.user, key, fingerprint(request))
        if answer is not None:
            return answer
        try:
            response = view(self, request, *args, **kwargs)
        except BaseException:
            row.delete()
            raise
        keep(row, response)
        return response

    return wrapper
