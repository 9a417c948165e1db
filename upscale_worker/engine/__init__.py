"""The upscaling engine: EDSR on OpenVINO, seam-free tiling, faithful pixels. Knows nothing of Django or Celery.

from upscale_worker.engine import upscale_file, EngineError, Cancelled
result = upscale_file("in.jpg", "out.png", scale=4, progress=lambda done, total: ..., cancelled=lambda: False)
"""

from upscale_worker.engine.errors import Cancelled, EngineError

__all__ = ["Cancelled", "EngineError", "Options", "Result", "upscale_array", "upscale_file"]


def __getattr__(name: str):
    # Imported on first use, so training imports imresize and metrics on a GPU machine without OpenVINO.
    if name in {"Options", "Result", "upscale_array", "upscale_file"}:
        from upscale_worker.engine import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
