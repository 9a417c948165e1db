"""This worker process' own facts: its id, the lease it takes, whether another worker's process is alive on
this host, and the engine's configuration from the settings. Shared by whole jobs (worker.py) and the parts
of shared-out ones (fanout.py)."""

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone


def worker_id():
    return f"{socket.gethostname()}:{os.getpid()}"


def lease():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def _pid_is_dead(worker):
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def engine_config():
    """The engine's configuration from the UPSCALE_* settings (EngineConfig; EngineError on a bad value)."""
    from upscale_worker.engine.config import EngineConfig

    return EngineConfig(
        models_dir=settings.UPSCALE_MODELS_DIR,
        cache_dir=settings.UPSCALE_CACHE_DIR,
        precision=settings.UPSCALE_PRECISION,
        threads=settings.UPSCALE_THREADS or None,
        tiles=settings.UPSCALE_TILE,
        window_area=settings.UPSCALE_WINDOW_AREA,
        window_costs=settings.UPSCALE_WINDOW_COSTS,
        networks=settings.UPSCALE_MODELS,
        default_network=settings.UPSCALE_DEFAULT_NETWORK,
    )
