"""The one place the site opens Redis clients of its own (Celery's and the cache's are configured in
settings.py): every client carries the network options (keepalive probing and TCP_USER_TIMEOUT, from the
NET_* settings), so a command on a cut link fails in seconds. One client, and so one pool, per URL and
timeouts for the life of the process."""

import functools

import redis
from django.conf import settings


def connect(url: str, timeout: float, connect_timeout: float) -> redis.Redis:
    """A new client of the Redis at ``url`` (a health probe wants one that reuses nothing): connecting gives
    up after ``connect_timeout`` seconds, a command after ``timeout``; redis.RedisError comes from commands."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=connect_timeout, socket_timeout=timeout, **settings.REDIS_SOCKET_OPTIONS
    )


client = functools.lru_cache(maxsize=16)(connect)  # the same, kept: one pool per URL and timeouts


def broker(timeout: float = 5, connect_timeout: float = 1) -> redis.Redis:
    """The broker's Redis (the database of Celery's messages, the queue's markers and the metrics)."""
    return client(settings.CELERY_BROKER_URL, timeout, connect_timeout)


def cache(timeout: float = 0.5) -> redis.Redis:
    """The cache's Redis (rate limits): a short timeout, as the limits fail open."""
    return client(settings.CACHES["default"]["LOCATION"], timeout, timeout)
