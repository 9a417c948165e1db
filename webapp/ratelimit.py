"""Rate limits in Redis (the cache's database), shared by every web process. Fails open.

A window starts at its first hit and lasts ``period`` seconds (windows on the clock's minutes let a burst
straddling two of them pass twice); a refused caller is told the window's remaining seconds (Retry-After).
"""

import logging

import redis
from django.conf import settings

from webapp import redis_clients
from webapp.proxy import client_ip  # noqa: F401  (the callers' one import for limits by address)

log = logging.getLogger(__name__)
PREFIX = "upscale:rl:"


def connection():
    return redis_clients.cache()


def hit(key, limit, period=60):
    """Count one hit for ``key``. Returns 0 while at most ``limit`` hits fall in the window, else the seconds
    until the window ends (>= 1)."""
    name = PREFIX + key
    try:
        pipe = connection().pipeline()
        pipe.set(name, 0, ex=period, nx=True)  # INCR keeps the expiry set here
        pipe.incr(name)
        pipe.ttl(name)
        _, count, ttl = pipe.execute()
    except redis.RedisError as e:  # Redis is down: never lock everyone out
        log.warning("rate limit unavailable: %s", e)
        return 0
    return 0 if count <= limit else max(1, ttl)


def allow(key, limit, period=60):
    """Count one hit; False once more than ``limit`` hits fall in the window."""
    return hit(key, limit, period) == 0


def login_keys(client, username):
    """(key, limit) of each count of failed logins: per client and username, and per client. Never per username
    alone: anyone could then lock a user out from everywhere."""
    username = username.lower()[:150]
    return [
        (f"login:{client}:{username}", settings.LOGINS_PER_MINUTE),
        (f"login:{client}", settings.LOGIN_FAILURES_PER_CLIENT),
    ]


def login_blocked(client, username):
    """Seconds to wait before this client may try this username again (0: it may)."""
    try:
        pipe = connection().pipeline()
        for key, _ in login_keys(client, username):
            pipe.ttl(f"{PREFIX}lock:{key}")
        return max(0, *pipe.execute())
    except redis.RedisError as e:
        log.warning("rate limit unavailable: %s", e)
        return 0


def login_failed(client, username):
    """Count one failed login in each of its counts; a count that reaches its limit within a minute locks
    for a minute, doubled at each lock of the same count within a day, at most LOGIN_LOCK_MAX_SECONDS."""
    for key, limit in login_keys(client, username):
        if hit(key, limit - 1):
            _lock(key)


def _lock(key):
    try:
        pipe = connection().pipeline()
        pipe.incr(f"{PREFIX}strikes:{key}")
        pipe.expire(f"{PREFIX}strikes:{key}", 86400)
        pipe.delete(PREFIX + key)  # the next window starts after the lock
        strikes = pipe.execute()[0]
        seconds = min(settings.LOGIN_LOCK_MAX_SECONDS, 60 * 2 ** min(strikes - 1, 20))
        connection().set(f"{PREFIX}lock:{key}", 1, ex=seconds)
    except redis.RedisError as e:
        log.warning("rate limit unavailable: %s", e)


def too_many(message, retry_after):
    """A plain-text 429 for the site's forms, with Retry-After in seconds."""
    from django.http import HttpResponse

    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    return response
