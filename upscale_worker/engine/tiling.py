"""Seam-free tiling: a few fixed tile shapes serve every image size, with memory bounded by tile + output.

The image is padded by reflection (never cropped), cut into tiles of ``tile`` x ``tile`` pixels that
overlap by ``overlap`` on each side, and only each tile's interior is kept. With an overlap at least as
wide as the distance over which a tile's zero-padded border still changes the output (measured in
tests/engine/test_tiling.py), the result equals one inference on the whole padded image.
"""

from __future__ import annotations

from itertools import product
from typing import Callable

import numpy as np

from upscale_worker.engine.errors import Cancelled
from upscale_worker.engine.pixels import from_model, to_model

Infer = Callable[[np.ndarray], np.ndarray]  # float32 1x3xTxT in 0..255 -> 1x3x(sT)x(sT)
Progress = Callable[[int, int], None]


def tile_origins(length: int, core: int) -> range:
    return range(0, length, core)


def count_tiles(width: int, height: int, tile: int, overlap: int) -> int:
    core = tile - 2 * overlap
    return len(tile_origins(width, core)) * len(tile_origins(height, core))


def computed_pixels(width: int, height: int, tile: int, overlap: int) -> int:
    """Input pixels the network computes for this image: tiles x tile area, overlap and padding included."""
    return count_tiles(width, height, tile, overlap) * tile * tile


def best_tile(width: int, height: int, tiles: tuple[int, ...], overlap: int) -> int:
    """The tile side computing the fewest pixels; the smaller one on a tie, so small images keep small tiles."""
    return min(sorted(tiles), key=lambda tile: computed_pixels(width, height, tile, overlap))


def upscale_tiled(
    rgb: np.ndarray,
    scale: int,
    infer: Infer,
    tile: int,
    overlap: int,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """Upscale an H x W x 3 uint8/uint16 array tile by tile; returns the same dtype, scale times larger."""
    core = tile - 2 * overlap
    if core < 1:
        raise ValueError(f"tile {tile} leaves no interior with an overlap of {overlap}")
    h, w = rgb.shape[:2]
    rows, cols = tile_origins(h, core), tile_origins(w, core)
    # Reflect-pad by the overlap on every side, and further at the bottom/right to fill the last tiles.
    padded = np.pad(rgb, ((overlap, len(rows) * core - h + overlap), (overlap, len(cols) * core - w + overlap),
                          (0, 0)), mode="reflect")
    out = np.empty((h * scale, w * scale, 3), rgb.dtype)
    total, margin = len(rows) * len(cols), overlap * scale
    progress(0, total)
    for done, (y, x) in enumerate(product(rows, cols), start=1):
        if cancelled():
            raise Cancelled()
        sr = infer(to_model(padded[y : y + tile, x : x + tile]))
        keep_h, keep_w = min(core, h - y) * scale, min(core, w - x) * scale
        interior = sr[:, :, margin : margin + keep_h, margin : margin + keep_w]  # converted alone: less work
        out[y * scale : y * scale + keep_h, x * scale : x * scale + keep_w] = from_model(interior, rgb.dtype)
        progress(done, total)
    return out
