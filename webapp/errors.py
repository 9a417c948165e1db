"""The API's error bodies and how the schema documents them.

Every error answers ``{"detail": <a sentence>, "code": <a machine-readable word>}`` (a field error keeps its
field's list of messages beside them). The schema lists, per operation, every status it answers with this
body; ``document_errors`` adds those that every operation shares (401, 411, 413, default).
"""

import threading

from django.http import Http404
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

# Codes of DRF's exceptions that read better under the names integrators know from other APIs.
CODES = {"throttled": "rate_limited", "parse_error": "invalid", "not_authenticated": "not_authenticated"}
DESCRIPTIONS = {
    400: "Invalid input (`invalid`, `unsupported_format`, `too_large`, `target_too_small`, `too_many_files`, "
    "`unsafe_url`)",
    401: "No or wrong credentials (`not_authenticated`, `authentication_failed`)",
    403: "Forbidden (`signup_closed`)",
    405: "The path does not take this method (`method_not_allowed`)",
    404: "Not found, or not the caller's (`not_found`)",
    409: "Conflict with the resource's state, or the same Idempotency-Key is still in flight (`conflict`, "
    "`idempotency_in_flight`)",
    411: "A chunked body without Content-Length (`length_required`)",
    413: "The body is larger than the limit, refused before it is read (`too_large`)",
    415: "The body's Content-Type is not one the operation reads (`unsupported_media_type`)",
    422: "The Idempotency-Key was used with a different request (`idempotency_mismatch`)",
    429: "A rate limit or quota (`rate_limited`, `quota_exceeded`)",
    500: "An unexpected error on the server (`server_error`)",
    503: "A dependency is down (`unavailable`)",
    507: "The server's storage is full; nothing was kept (`insufficient_storage`)",
}


# A 400 with field errors; document_errors gives it the ValidationError schema.
FIELD_ERRORS = OpenApiResponse(description="Invalid input: `detail` and `code`, and each field's messages")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A sentence for a person.")
    code = serializers.CharField(
        help_text="A machine-readable word: invalid, unsupported_format, too_large, "
        "quota_exceeded, rate_limited, not_found, conflict, ..."
    )


def error(detail, status, code="invalid", **extra):
    """The API's error Response: {"detail", "code"} plus ``extra`` fields."""
    return Response({"detail": str(detail), "code": code, **extra}, status=status)


def exception_handler(exc, context):
    """DRF's handler, with ``detail`` and ``code`` on every error body (field errors keep their fields)."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if request is not None:  # an error is JSON whatever Accept asked for (a download's image, say)
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
    if isinstance(exc, exceptions.ValidationError):
        fields = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        fields = {name: _flatten(messages) for name, messages in fields.items()}
        detail = "; ".join(f"{name}: {messages[0]}" for name, messages in fields.items() if messages)
        response.data = {**fields, "detail": detail or "Invalid input.", "code": "invalid"}
    elif isinstance(response.data, dict):
        code = "not_found" if isinstance(exc, Http404) else getattr(exc, "default_code", "error")
        response.data = {"detail": str(response.data.get("detail", "")), "code": CODES.get(code, code)}
    return response


def _flatten(messages, prefix=""):
    """A field's messages as a list of strings: an item's errors (a list of files, of events) say its index."""
    if isinstance(messages, dict):
        return [m for key, value in messages.items() for m in _flatten(value, f"{prefix}{key}: ")]
    if isinstance(messages, list):
        return [m for value in messages for m in _flatten(value, prefix)]
    return [f"{prefix}{messages}"]


def errors(*statuses):
    """``extend_schema(responses=...)`` entries for these error statuses."""
    return {s: OpenApiResponse(ErrorSerializer, description=DESCRIPTIONS[s]) for s in statuses}


def _error_response(status):
    return {
        "description": DESCRIPTIONS.get(status, "An error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: what every operation shares. 401 where credentials are needed,
    411 and 413 where a body is read (the body-size guard answers them before any view), 415, 405 (the path's other
    methods) and ``default``."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ValidationError"] = {
        **schemas["Error"],
        "additionalProperties": {
            "type": "array",
            "items": {"type": "string"},
            "description": "A field's messages",
        },
    }
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            responses = operation.setdefault("responses", {})
            if (
                "400" in responses and "content" not in responses["400"]
            ):  # field errors: FIELD_ERRORS in api.py
                responses["400"]["content"] = {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ValidationError"}}
                }
            if any(operation.get("security", [{}])):
                responses.setdefault("401", _error_response(401))
            if method in ("post", "put", "patch"):
                responses.setdefault("411", _error_response(411))
                responses.setdefault("413", _error_response(413))
                responses.setdefault("415", _error_response(415))
            responses.setdefault("405", _error_response(405))
            responses.setdefault("500", _error_response(500))
            responses.setdefault("default", _error_response(500) | {"description": "Any other error"})
    return result


def _api_or_page(status, detail, code, page):
    """A Django error handler: the API's JSON body under /api/, Django's page (``page``) elsewhere."""

    def handler(request, *args, **kwargs):
        from django.http import JsonResponse

        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail, "code": code}, status=status)
        return page(request, *args, **kwargs)

    return handler


not_found = _api_or_page(404, "Not found.", "not_found", defaults.page_not_found)  # a path no route matches
bad_request = _api_or_page(400, "Bad request.", "invalid", defaults.bad_request)  # a Host not allowed, say
permission_denied = _api_or_page(403, "Forbidden.", "forbidden", defaults.permission_denied)
server_error = _api_or_page(500, "An unexpected error on the server.", "server_error", defaults.server_error)


class SchemaView(SpectacularAPIView):
    """The schema, generated one request at a time: drf-spectacular loads its extension classes lazily on the
    first generation, and two threads doing it at once (gunicorn runs threads) answered 500."""

    _lock = threading.Lock()
    schema = None  # the schema view is not an operation of the schema itself (as SpectacularAPIView)

    def get(self, request, *args, **kwargs):
        with self._lock:
            return super().get(request, *args, **kwargs)
