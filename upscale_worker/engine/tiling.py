"""Seam-free tiling: a few fixed tile shapes serve every image size, with memory bounded by tile + output.

The image is cut into windows of ``tile`` x ``tile`` pixels (shorter where the image is) that lie inside
it and overlap; from each window only an interior is kept that is at least ``overlap`` pixels from any
window edge other than the image's own border. The network zero-pads every window edge, as it did at the
edges of its training patches; inside the image that padding is wrong, but with an overlap at least as
wide as the distance over which it still changes the output (measured in tests/engine/test_tiling.py) it
never reaches a kept pixel, and at the image's border it is what one inference on the whole image does.
So the result equals that inference. Before tiling, the image itself may be padded by ``pad`` pixels
(``border``: replicated or reflected; "zero" leaves the network's own zero padding at the image's edge):
the kept output is then cropped back, so the zeros lie ``pad`` pixels beyond the picture and a flat or
tiny image is not darkened towards its edges (the measured choice is in api.py). In f32 within 1 grey level; in int8 a 128 window can differ from a whole-image compile by 2 on a few pixels
at any overlap, so not from the seams: kernels compiled for different shapes round differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from upscale_worker.engine.backprojection import back_project
from upscale_worker.engine.errors import Cancelled
from upscale_worker.engine.pixels import from_model, to_model

Infer = Callable[[np.ndarray], np.ndarray]  # float32 1x3xHxW in 0..255 -> 1x3x(sH)x(sW)
Progress = Callable[[int, int], None]
# How the image is extended beyond its edges before inference: OpenCV border modes ("reflect" mirrors
# around the edge pixel, gfedcb|abcdefgh|gfedcba, as numpy's "reflect" does).
BORDERS = {"zero": None, "replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT_101}


def windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int]]:
    """Along one axis: (window start, kept from, kept to) for the fewest windows of min(length, tile) pixels
    that overlap their neighbours by at least 2 x ``overlap``, spread evenly; each seam lies in the middle of
    an overlap, so every kept pixel is ``overlap`` or more from the edge of its window (or at the image's)."""
    if length <= tile:
        return [(0, 0, length)]
    count = math.ceil((length - 2 * overlap) / (tile - 2 * overlap))
    starts = [i * (length - tile) // (count - 1) for i in range(count)]
    seams = [(start + tile + following) // 2 for start, following in pairwise(starts)]
    return list(zip(starts, [0, *seams], [*seams, length]))


def computed_pixels(width: int, height: int, tile: int, overlap: int) -> int:
    """Input pixels the network computes for this image: windows x window area, overlaps included."""
    across = len(windows(width, tile, overlap)) * min(width, tile)
    down = len(windows(height, tile, overlap)) * min(height, tile)
    return across * down


def best_tile(width: int, height: int, tiles: tuple[int, ...], overlap: int) -> int:
    """The tile side computing the fewest pixels; the smaller one on a tie, so small images keep small tiles."""
    return min(sorted(tiles), key=lambda tile: computed_pixels(width, height, tile, overlap))


def padded(rgb: np.ndarray, pad: int, border: str) -> np.ndarray:
    """``rgb`` (H x W x C, any dtype) with ``pad`` pixels added on every side as ``border`` says (see
    BORDERS); the same array when nothing is added. Raises KeyError for an unknown border."""
    mode = BORDERS[border]
    if mode is None or pad == 0:
        return rgb
    return cv2.copyMakeBorder(rgb, pad, pad, pad, pad, mode)


@dataclass(frozen=True)
class Grid:
    """The windows of one image: ``rows`` x ``cols`` spans (window start in the padded image, kept from, kept
    to in the picture) from windows() and _cropped(); window ``i`` is row ``i // len(cols)``, column
    ``i % len(cols)``. Every window is win_h x win_w input pixels and keeps a disjoint interior, so any subset
    of windows can be computed anywhere and placed into the output afterwards (a job shared out in parts)."""

    height: int  # the picture's, before padding
    width: int
    scale: int
    pad: int
    win_h: int
    win_w: int
    rows: tuple[tuple[int, int, int], ...]
    cols: tuple[tuple[int, int, int], ...]

    @property
    def total(self) -> int:
        return len(self.rows) * len(self.cols)

    def kept(self, index: int) -> tuple[slice, slice]:
        """Window ``index``'s interior in the output: (rows, columns) slices of the upscaled picture."""
        (_, y0, y1), (_, x0, x1) = self.rows[index // len(self.cols)], self.cols[index % len(self.cols)]
        s = self.scale
        return slice(y0 * s, y1 * s), slice(x0 * s, x1 * s)


def grid(height: int, width: int, scale: int, tile: int, overlap: int, pad: int = 0) -> Grid:
    """The windows upscale_tiled() runs for a height x width picture padded by ``pad`` on each side.
    Raises ValueError when ``tile`` leaves no interior."""
    if tile - 2 * overlap < 1:
        raise ValueError(f"tile {tile} leaves no interior with an overlap of {overlap}")
    rows = _cropped(windows(height + 2 * pad, tile, overlap), pad, height)
    cols = _cropped(windows(width + 2 * pad, tile, overlap), pad, width)
    win_h, win_w = min(height + 2 * pad, tile), min(width + 2 * pad, tile)
    return Grid(height, width, scale, pad, win_h, win_w, tuple(rows), tuple(cols))


def run_window(
    source: np.ndarray, cut: Grid, index: int, infer: Infer, rounds: int = 0, dtype=np.uint8
) -> np.ndarray:
    """Window ``index`` of ``cut`` from the padded ``source`` (H + 2 pad x W + 2 pad x 3): its kept interior,
    upscaled (``rounds`` of back-projection onto the window first), as ``dtype`` (uint8 or uint16)."""
    (y, y0, y1), (x, x0, x1) = cut.rows[index // len(cut.cols)], cut.cols[index % len(cut.cols)]
    s, pad = cut.scale, cut.pad
    window = to_model(source[y : y + cut.win_h, x : x + cut.win_w])
    sr = infer(window)
    if rounds:
        sr = back_project(window[0], sr[0], s, rounds)[None]
    interior = sr[:, :, (y0 + pad - y) * s : (y1 + pad - y) * s, (x0 + pad - x) * s : (x1 + pad - x) * s]
    return from_model(interior, dtype)  # converted alone: less work


def upscale_tiled(
    rgb: np.ndarray,
    scale: int,
    infer: Infer,
    tile: int,
    overlap: int,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
    pad: int = 0,
    border: str = "zero",
    rounds: int = 0,
) -> np.ndarray:
    """Upscale an H x W x 3 uint8/uint16 array window by window, the image first padded by ``pad`` pixels
    of ``border`` (see padded(); none for "zero"); ``infer`` takes min(H + 2 pad, tile) x min(W + 2 pad, tile)
    windows, and each window's output gets ``rounds`` of back-projection onto its input (backprojection.py).
    Returns the same dtype, H x W scale times larger: the padding's output is never stored."""
    pad = pad if BORDERS[border] is not None else 0
    cut = grid(rgb.shape[0], rgb.shape[1], scale, tile, overlap, pad)
    source = padded(rgb, pad, border)
    out = np.empty((cut.height * scale, cut.width * scale, 3), rgb.dtype)
    progress(0, cut.total)
    for index in range(cut.total):
        if cancelled():
            raise Cancelled()
        out[cut.kept(index)] = run_window(source, cut, index, infer, rounds, rgb.dtype)
        progress(index + 1, cut.total)
    return out


def _cropped(spans: list[tuple[int, int, int]], pad: int, length: int) -> list[tuple[int, int, int]]:
    """windows() of the padded axis with each kept span moved into the picture's coordinates and cut to
    0..length; windows that keep nothing of the picture are dropped (window starts stay padded)."""
    kept = [(start, max(k0 - pad, 0), min(k1 - pad, length)) for start, k0, k1 in spans]
    return [span for span in kept if span[1] < span[2]]
