"""Logging: plain lines, or with LOG_FORMAT=json one JSON object per line (python-json-logger), in web and
worker processes alike. Every line carries the request id of the request it belongs to and the job id of the
job it is about (set by the worker once it has claimed a job; Celery's line that a bell was received comes
before any claim and names no job).

Free of Django: gunicorn's configuration reads it too.
"""

import contextvars
import logging
import re
import uuid

request_id = contextvars.ContextVar("request_id", default=None)
job_id = contextvars.ContextVar("job_id", default=None)
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


def new_request_id(sent, trusted):
    """The id a request is logged under: ``sent`` (X-Request-ID) when a trusted proxy sent at most 64
    characters of [A-Za-z0-9._-], else a new random one (32 hex digits)."""
    if trusted and sent and REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``job_id`` to the records that have them (a handler filter: every logger's
    records pass it, Celery's included)."""

    def filter(self, record):
        rid, jid = request_id.get(), job_id.get()
        args = record.args if isinstance(record.args, dict) else {}
        if rid is None:  # gunicorn's access lines: the id the response echoed
            rid = args.get("{x-request-id}o") or None
        rid, jid = getattr(record, "request_id", rid), getattr(record, "job_id", jid)  # extra= wins
        if rid is not None:
            record.request_id = rid
        if jid is not None:
            record.job_id = jid
        return True


def config(fmt="plain", level="INFO"):
    """logging.config.dictConfig's dict: stdout, plain or JSON, with the context filter on the handler."""
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "webapp.logs.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        # gunicorn's own loggers (its configuration reads this too) write through the same handler
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in ("gunicorn.error", "gunicorn.access")
        },
    }
