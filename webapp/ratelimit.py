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


def waiting(key, limit):
    """Like hit() without counting: the seconds left when ``limit`` hits already fall in the window, else 0."""
    name = PREFIX + key
    try:
        pipe = connection().pipeline()
        pipe.get(name)
        pipe.ttl(name)
        count, ttl = pipe.execute()
    except redis.RedisError as e:
        log.warning("rate limit unavailable: %s", e)
        return 0
    return max(1, ttl) if int(count or 0) >= limit else 0


def allow(key, limit, period=60):
    """Count one hit; False once more than ``limit`` hits fall in the window."""
    return hit(key, limit, period) == 0


def login_keys(client, username):
    """(key, limit, period) of each count of failed logins: per client and username, per client, per username."""
    username = username.lower()[:150]
    return [
        (f"login:{client}:{username}", settings.LOGINS_PER_MINUTE, 60),
        (f"login:{client}", settings.LOGIN_FAILURES_PER_CLIENT, 60),
        (f"login-user:{username}", settings.LOGIN_FAILURES_PER_USERNAME, 3600),
    ]


def login_blocked(client, username):
    """Seconds to wait before this client may try this username again (0: it may)."""
    return max(waiting(key, limit) for key, limit, _ in login_keys(client, username))


def login_failed(client, username):
    """Count one failed login in every one of its windows."""
    for key, limit, period in login_keys(client, username):
        hit(key, limit, period)


def too_many(message, retry_after):
    """A plain-text 429 for the site's forms, with Retry-After in seconds."""
    from django.http import HttpResponse

    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    return response
