"""What the job page's partial preview costs a worker: one 1920x1080 x2 job's windows drawn into it, and each
write (JPEG encode and storage write), against the final result preview that every job already makes once.

    python -m bench.partial_preview [--size 1920x1080] [--scale 2] [--repeat 20]

No inference: the "upscaled" windows are the input enlarged (cv2), which costs the preview the same as the
network's. The windows are the engine's (its default tiles and geometry for EDSR). Times are medians.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import LOADS, fmt, markdown_table, publish
from upscale_worker.engine.api import OVERLAP, PAD
from upscale_worker.engine.config import DEFAULT_TILES
from upscale_worker.engine.previews import PartialPreview, pixels_preview
from upscale_worker.engine.tiling import best_tile, window_grid

PREVIEW_SIZE = 1024  # the platform's PREVIEW_SIZE default
INTERVAL = 2.0  # the platform's PARTIAL_PREVIEW_INTERVAL default


def photo(width: int, height: int) -> np.ndarray:
    """A photo-like picture (smooth gradients and noise: JPEG has work to do), H x W x 3 uint8."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.dstack([x / width * 255, y / height * 255, (x + y) / (width + height) * 255])
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def median_ms(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    s = args.scale
    rgb = photo(width, height)
    result = cv2.resize(rgb, (width * s, height * s), interpolation=cv2.INTER_LINEAR)
    tile = best_tile(width + 2 * PAD, height + 2 * PAD, DEFAULT_TILES, OVERLAP)
    cut = window_grid(height, width, s, tile, OVERLAP, PAD)
    interiors = [result[cut.kept(i)] for i in range(cut.total)]
    LOADS.append(__import__("os").getloadavg()[0])

    def fill():
        partial = PartialPreview(rgb, cut, PREVIEW_SIZE)
        for index, interior in enumerate(interiors):
            partial.add(index, interior)
        return partial

    start_ms = median_ms(lambda: PartialPreview(rgb, cut, PREVIEW_SIZE), args.repeat)
    fill_ms = median_ms(fill, args.repeat) - start_ms
    partial = fill()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "partial.jpg"
        write_ms = median_ms(lambda: target.write_bytes(partial.encode()), args.repeat)
    data = partial.encode()
    final_ms = median_ms(lambda: pixels_preview(result, None, PREVIEW_SIZE), args.repeat)
    LOADS.append(__import__("os").getloadavg()[0])

    rows = [
        ["start (input enlarged, dimmed)", fmt(start_ms, 2), "once per job"],
        [
            f"draw one window (mean of {cut.total}, {tile}-px tiles)",
            fmt(fill_ms / cut.total, 3),
            "per window",
        ],
        [f"one write (JPEG {len(data) // 1024} KiB, to disk)", fmt(write_ms, 2), f"every {INTERVAL:g} s"],
        ["peer: the result preview the job makes anyway", fmt(final_ms, 2), "once per job"],
    ]
    share = write_ms / 1000 / INTERVAL
    publish(
        "partial-preview",
        f"The partial preview of a {width}x{height} x{s} job, milliseconds (median of {args.repeat})",
        markdown_table(["step", "ms", "how often"], rows),
        [
            f"A write costs {write_ms / final_ms:.2f}x the one result preview every job makes; at one write every "
            f"{INTERVAL:g} s it takes {100 * share:.2f}% of one core, and drawing all {cut.total} windows "
            f"{fill_ms:.0f} ms in all.",
            "The database write (one UPDATE) and a remote storage's round trip come on top of the write.",
        ],
    )


if __name__ == "__main__":
    main()
