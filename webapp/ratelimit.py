"""Fixed-window rate limits in the cache (Redis), shared by every web process. Fails open."""

import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)


def allow(key, limit, period=60):
    """Count one hit for ``key``; False once more than ``limit`` hits fall in the current window."""
    window = f"rl:{key}:{int(time.time() // period)}"
    try:
        cache.add(window, 0, period + 1)
        return cache.incr(window) <= limit
    except Exception as e:  # the cache is down: never lock everyone out
        log.warning("rate limit unavailable: %s", e)
        return True


def client_ip(request):
    return request.META.get("REMOTE_ADDR", "")
