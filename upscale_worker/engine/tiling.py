"""Seam-free tiling: windows of a bounded size serve every image size, with memory bounded by window + output.

The image is cut into windows of ``tile`` pixels, square or (height, width), chosen per image among a few
configured tile sides and sides fitted to the image (best_window()), shorter where the image is, that lie inside
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

A network whose output depends on where a window starts (RLFN's attention works on a 6-pixel grid) gets a
window ``grid``: the padded image is extended at its bottom and right to a multiple of it (and to at least
``min_window``, the smallest side the network runs on), tiles are cut down to a multiple of it, and every
window starts on it, so each sees the grid the whole image would.
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


def windows(length: int, tile: int, overlap: int, grid: int = 1) -> list[tuple[int, int, int]]:
    """Along one axis: (window start, kept from, kept to) for the fewest windows of min(length, tile) pixels
    that overlap their neighbours by at least 2 x ``overlap``, spread evenly; each seam lies in the middle of
    an overlap, so every kept pixel is ``overlap`` or more from the edge of its window (or at the image's).
    Every start is a multiple of ``grid`` (``length`` and ``tile`` must then be multiples of it too)."""
    if length <= tile:
        return [(0, 0, length)]
    count = math.ceil((length - tile) / (tile - 2 * overlap - grid + 1)) + 1  # starts rounded down
    starts = [i * (length - tile) // (count - 1) // grid * grid for i in range(count)]
    seams = [(start + tile + following) // 2 for start, following in pairwise(starts)]
    return list(zip(starts, [0, *seams], [*seams, length]))


def computed_pixels(width: int, height: int, tile: int, overlap: int, grid: int = 1) -> int:
    """Input pixels the network computes for this image: windows x window area, overlaps included."""
    across = len(windows(width, tile, overlap, grid)) * min(width, tile)
    down = len(windows(height, tile, overlap, grid)) * min(height, tile)
    return across * down


def best_tile(width: int, height: int, tiles: tuple[int, ...], overlap: int, grid: int = 1) -> int:
    """The tile side computing the fewest pixels; the smaller one on a tie, so small images keep small tiles."""
    return min(sorted(tiles), key=lambda tile: computed_pixels(width, height, tile, overlap, grid))


WindowCost = Callable[[int, int], float]  # (window height, width) in input pixels -> cost of one window


def fitted_sides(length: int, overlap: int, grid: int = 1, low: int = 1, high: int = 1 << 30) -> list[int]:
    """Along one axis of ``length`` pixels (a multiple of ``grid``): for each count of windows n = 1, 2, ...,
    the smallest window side on the grid with which windows() cuts ``length`` into n windows, kept when it
    lies in low..high (one window, ``length`` itself, needs only to be at most ``high``). windows() needs n windows of side t when
    (length - t) <= (n - 1) * (t - 2 * overlap - grid + 1), so t = ceil((length + (n - 1) * (2 * overlap +
    grid - 1)) / n), rounded up to the grid. Sides fall with n towards 2 * overlap; the list stops below
    ``low`` or below 4 * overlap + grid (a window keeping less than its overlaps wastes over half its work)."""
    sides, n = [length] if length <= high else [], 2
    while True:
        side = -(-(length + (n - 1) * (2 * overlap + grid - 1)) // n)
        side += (-side) % grid
        if side < max(low, 4 * overlap + grid):
            return sides
        if side <= high and side not in sides:
            sides.append(side)
        n += 1


def best_window(
    width: int,
    height: int,
    tiles: tuple[int, ...],
    overlap: int,
    grid: int = 1,
    max_area: int = 0,
    cost: WindowCost | None = None,
    low: int = 1,
) -> tuple[int, int]:
    """The window (height, width) with which an image of width x height (padded, on the grid) costs least:
    each square side of ``tiles``, and each pair of fitted_sides() of at least ``low`` whose window area is
    at most ``max_area`` (0: the tiles alone). The cost of a choice is its count of windows times ``cost(h,
    w)`` of one window (None: its pixels, so the fewest computed pixels win); ties go to fewer pixels, then
    to the smaller window. Returns the sides cut to the image (a side equal to the image's is one window)."""
    square = [(min(height, t), min(width, t)) for t in tiles]
    fitted = [
        (h, w)
        for h in fitted_sides(height, overlap, grid, low)
        for w in fitted_sides(width, overlap, grid, low)
        if h * w <= max_area
    ]
    price = cost or (lambda h, w: float(h * w))

    def total(window: tuple[int, int]) -> tuple[float, int, int]:
        h, w = window
        count = len(windows(height, h, overlap, grid)) * len(windows(width, w, overlap, grid))
        return count * price(h, w), count * h * w, h * w

    return min(dict.fromkeys(square + fitted), key=total)


def on_grid(length: int, grid: int = 1, min_window: int = 1) -> int:
    """``length`` extended to at least ``min_window`` and then to a multiple of ``grid``."""
    length = max(length, min_window)
    return length + (-length) % grid


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
    full_h: int = 0  # the padded picture extended to the network's window grid (on_grid())
    full_w: int = 0

    @property
    def total(self) -> int:
        return len(self.rows) * len(self.cols)

    def kept(self, index: int) -> tuple[slice, slice]:
        """Window ``index``'s interior in the output: (rows, columns) slices of the upscaled picture."""
        (_, y0, y1), (_, x0, x1) = self.rows[index // len(self.cols)], self.cols[index % len(self.cols)]
        s = self.scale
        return slice(y0 * s, y1 * s), slice(x0 * s, x1 * s)


def window_grid(
    height: int,
    width: int,
    scale: int,
    tile: int | tuple[int, int],
    overlap: int,
    pad: int = 0,
    grid: int = 1,
    min_window: int = 1,
) -> Grid:
    """The windows upscale_tiled() runs for a height x width picture padded by ``pad`` on each side, then
    extended at its bottom and right to ``min_window`` and a multiple of ``grid`` (on_grid()); ``tile`` (one
    side, or (height, width) of a non-square window) is cut to a multiple of ``grid``. Raises ValueError when
    ``tile`` leaves no interior on an axis it cuts into several windows."""
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    tile_h, tile_w = tile_h - tile_h % grid, tile_w - tile_w % grid
    full_h, full_w = (on_grid(n + 2 * pad, grid, min_window) for n in (height, width))
    if any(t < full and t - 2 * overlap < grid for t, full in ((tile_h, full_h), (tile_w, full_w))):
        raise ValueError(f"tile {tile} leaves no interior with an overlap of {overlap}")
    rows = _cropped(windows(full_h, tile_h, overlap, grid), pad, height)
    cols = _cropped(windows(full_w, tile_w, overlap, grid), pad, width)
    win_h, win_w = min(full_h, tile_h), min(full_w, tile_w)
    return Grid(height, width, scale, pad, win_h, win_w, tuple(rows), tuple(cols), full_h, full_w)


def source_of(rgb: np.ndarray, cut: Grid, border: str) -> np.ndarray:
    """The array ``cut``'s windows are read from: ``rgb`` padded by ``cut.pad`` of ``border`` (padded()) and
    extended at its bottom and right to ``cut.full_h`` x ``cut.full_w`` (zeros for "zero")."""
    return _extended(padded(rgb, cut.pad, border), cut.full_h, cut.full_w, border)


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
    tile: int | tuple[int, int],
    overlap: int,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
    pad: int = 0,
    border: str = "zero",
    rounds: int = 0,
    grid: int = 1,
    min_window: int = 1,
) -> np.ndarray:
    """Upscale an H x W x 3 uint8/uint16 array window by window, the image first padded by ``pad`` pixels
    of ``border`` (see padded(); none for "zero") and extended by on_grid() at its bottom and right;
    ``infer`` takes windows of min(that padded side, tile cut to a multiple of ``grid``) on each axis (``tile``:
    one side, or a (height, width) pair), and
    each window's output gets ``rounds`` of back-projection onto its input (backprojection.py).
    Returns the same dtype, H x W scale times larger: the padding's output is never stored."""
    pad = pad if BORDERS[border] is not None else 0
    cut = window_grid(rgb.shape[0], rgb.shape[1], scale, tile, overlap, pad, grid, min_window)
    source = source_of(rgb, cut, border)
    out = np.empty((cut.height * scale, cut.width * scale, 3), rgb.dtype)
    progress(0, cut.total)
    for index in range(cut.total):
        if cancelled():
            raise Cancelled()
        out[cut.kept(index)] = run_window(source, cut, index, infer, rounds, rgb.dtype)
        progress(index + 1, cut.total)
    return out


def _extended(rgb: np.ndarray, height: int, width: int, border: str) -> np.ndarray:
    """``rgb`` grown at its bottom and right to height x width with ``border`` (zeros for "zero")."""
    bottom, right = height - rgb.shape[0], width - rgb.shape[1]
    if not bottom and not right:
        return rgb
    mode = BORDERS[border]
    return cv2.copyMakeBorder(
        rgb, 0, bottom, 0, right, cv2.BORDER_CONSTANT if mode is None else mode, value=0
    )


def _cropped(spans: list[tuple[int, int, int]], pad: int, length: int) -> list[tuple[int, int, int]]:
    """windows() of the padded axis with each kept span moved into the picture's coordinates and cut to
    0..length; windows that keep nothing of the picture are dropped (window starts stay padded)."""
    kept = [(start, max(k0 - pad, 0), min(k1 - pad, length)) for start, k0, k1 in spans]
    return [span for span in kept if span[1] < span[2]]
