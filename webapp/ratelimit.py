"""Rate limits in the cache (Redis), shared by every web process. Fails open."""

import logging

from django.core.cache import cache

log = logging.getLogger(__name__)


def allow(key, limit, period=60):
    """Count one hit for ``key``; False once more than ``limit`` hits fall in its window: ``period`` seconds
    from the first hit. (Windows on the clock's minutes let a burst straddling two of them pass twice.)"""
    window = f"rl:{key}"
    try:
        cache.add(window, 0, period)  # Redis INCR keeps the expiry set here
        return cache.incr(window) <= limit
    except Exception as e:  # the cache is down: never lock everyone out
        log.warning("rate limit unavailable: %s", e)
        return True


def client_ip(request):
    return request.META.get("REMOTE_ADDR", "")
