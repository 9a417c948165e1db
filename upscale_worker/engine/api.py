"""The engine's public calls: arrays for evaluation, files for the CLI and the Celery task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from upscale_worker.engine import pixels
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.tiling import Infer, Progress, upscale_tiled

# Tile overlap in input pixels: measured, not guessed (tests/engine/test_tiling.py and the report).
OVERLAP = 12
SCALES = (2, 3, 4)


@dataclass(frozen=True)
class Result:
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]


@dataclass(frozen=True)
class Options:
    """Runtime choices; None means the environment's default (see runtime.py)."""

    precision: str | None = None
    tile: int | None = None


def _infer(scale: int, options: Options) -> tuple[Infer, int]:
    if scale not in SCALES:
        raise EngineError(f"Scale x{scale} is not offered; choose x2, x3 or x4.")
    # Imported here so that processes which only validate requests (the web app) never load OpenVINO.
    from upscale_worker.engine import runtime

    tile = options.tile or runtime.tile_size()
    if tile <= 2 * OVERLAP:
        raise EngineError(f"The tile must be larger than {2 * OVERLAP} pixels (its overlap on both sides).")
    return runtime.infer_function(scale, options.precision or runtime.precision(), tile), tile


def upscale_array(
    rgb: np.ndarray,
    scale: int,
    options: Options = Options(),
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """H x W x 3 uint8 (or uint16) RGB -> the same, ``scale`` times larger."""
    infer, tile = _infer(scale, options)
    return upscale_tiled(rgb, scale, infer, tile, OVERLAP, progress, cancelled)


def upscale_file(
    src: str | Path | BinaryIO,
    dst: str | Path,
    scale: int = 4,
    fmt: str = "png",
    quality: int = 95,
    keep_metadata: bool = False,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
    options: Options = Options(),
) -> Result:
    """Read ``src``, upscale it and write ``dst`` as ``fmt`` (png, jpeg or webp)."""
    if fmt not in pixels.OUTPUT_FORMATS:
        raise EngineError(f"Output format {fmt!r} is not supported; choose PNG, JPEG or WebP.")
    infer, tile = _infer(scale, options)  # first, so a missing model fails before any decoding
    picture = pixels.load(src)
    rgb = upscale_tiled(picture.rgb, scale, infer, tile, OVERLAP, progress, cancelled)
    result = picture.with_pixels(rgb, pixels.upscale_alpha(picture.alpha, scale))
    pixels.save(result, dst, fmt, quality, keep_metadata)
    return Result(picture.size, result.size)
