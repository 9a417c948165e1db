"""``Prefer: wait=N`` (RFC 7240) on creating and reading a job: the answer comes when the job has finished or
N seconds have passed (N at most PREFER_WAIT_MAX). A waiting request holds a web thread, so only
PREFER_WAIT_SLOTS of them wait at once per process; the rest are answered at once, without
``Preference-Applied``."""

import re
import threading
import time

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from webapp.jobs.models import FINISHED, Job

PREFER = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,6})(?:$|[,;\s])", re.IGNORECASE)
PARAMETER = OpenApiParameter(
    "Prefer",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="`wait=N`: answer when the job has finished or N seconds have passed "
    "(N at most PREFER_WAIT_MAX, 20 by default)",
)
POLL_SECONDS = 0.2
_lock = threading.Lock()
_waiting = 0


def requested(request):
    """The seconds asked for in ``Prefer: wait=N``, capped at PREFER_WAIT_MAX, or None."""
    match = PREFER.search(request.headers.get("Prefer", ""))
    return None if match is None else min(float(match.group(1)), settings.PREFER_WAIT_MAX)


def _take_slot():
    global _waiting
    with _lock:
        if _waiting >= settings.PREFER_WAIT_SLOTS:
            return False
        _waiting += 1
        return True


def _free_slot():
    global _waiting
    with _lock:
        _waiting -= 1


def wait_for(request, job):
    """Wait as the request prefers; returns (the job as it is now, the Preference-Applied value or None)."""
    seconds = requested(request)
    if seconds is None or job.status in FINISHED or not _take_slot():
        return job, None
    try:
        deadline = time.monotonic() + seconds
        while job.status not in FINISHED and time.monotonic() < deadline:
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            job = Job.objects.get(pk=job.pk)
    finally:
        _free_slot()
    return job, f"wait={seconds:g}"


def respond(response, applied):
    """Mark a response answered after waiting (and that it varies with Prefer)."""
    response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Prefer"]))
    if applied:
        response["Preference-Applied"] = applied
    return response
