"""``Prefer: wait=N`` (RFC 7240) on creating and reading a job: the answer comes when the job has finished or
N seconds have passed (N at most PREFER_WAIT_MAX). A waiting request holds a web thread, so only
PREFER_WAIT_SLOTS of them wait at once per process (fewer than its threads) and PREFER_WAIT_PER_USER per user
across every process (a Redis count); the rest are answered at once, without ``Preference-Applied``."""

import logging
import re
import threading
import time
import uuid

import redis
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from webapp import ratelimit
from webapp.jobs.models import FINISHED, Job

log = logging.getLogger(__name__)

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


def _user_key(user):
    return f"{ratelimit.PREFIX}wait:{user.pk}"


def _take_user_slot(user, seconds):
    """A place among the user's waiting requests (a sorted set of tokens scored by their deadline, so a place
    held by a killed process frees itself); returns the token, or None when the user already waits enough
    or Redis cannot tell (then nobody waits: waiting is a courtesy, the threads are not)."""
    key, token, now = _user_key(user), uuid.uuid4().hex, time.time()
    try:
        pipe = ratelimit.connection().pipeline()
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {token: now + seconds + 5})
        pipe.zcard(key)
        pipe.expire(key, int(settings.PREFER_WAIT_MAX) + 10)  # outlives every place in it
        count = pipe.execute()[2]
        if count <= settings.PREFER_WAIT_PER_USER:
            return token
        ratelimit.connection().zrem(key, token)
    except redis.RedisError as e:
        log.warning("waiting count unavailable: %s", e)
    return None


def _free_user_slot(user, token):
    try:
        ratelimit.connection().zrem(_user_key(user), token)
    except redis.RedisError as e:  # the place frees itself at its deadline
        log.warning("waiting count unavailable: %s", e)


def wait_for(request, job):
    """Wait as the request prefers; returns (the job as it is now, the Preference-Applied value or None)."""
    seconds = requested(request)
    if seconds is None or job.status in FINISHED or not _take_slot():
        return job, None
    try:
        token = _take_user_slot(request.user, seconds)
        if token is None:
            return job, None
        try:
            job = _poll(job, seconds)
        finally:
            _free_user_slot(request.user, token)
    finally:
        _free_slot()
    return job, f"wait={seconds:g}"


def _poll(job, seconds):
    deadline = time.monotonic() + seconds
    while job.status not in FINISHED and time.monotonic() < deadline:
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        job = Job.objects.get(pk=job.pk)
    return job


def respond(response, applied):
    """Mark a response answered after waiting (and that it varies with Prefer)."""
    response["Vary"] = ", ".join(filter(None, [response.get("Vary"), "Prefer"]))
    if applied:
        response["Preference-Applied"] = applied
    return response
