"""Iterative back-projection (Irani and Peleg, 1991): make the upscaled picture shrink back to its input.

Each round shrinks the result with MATLAB bicubic (the degradation the models were trained to invert),
takes the difference from the input and adds it back enlarged: ``sr += up(lr - down(clip(sr)))``. EDSR
is slightly biased on saturated colours and sharpens hard edges past 0 and 255; clipping then shifts small
synthetic pictures' colours (PngSuite's 1- and 2-bit palettes, gamma ramps). Measured in models/README.md
("Back-projection"). After the JPEG-aware models only for inputs of quality 90 or more (api.rounds): against
a more strongly compressed input it would put back the blocks and ringing that the model removed. The
rounds are followed by settle_clipping(), which gives back the mean colour that the final clip would take
from pictures no result in range can shrink back to (one-pixel checkerboards, pixel-sized palette dots).

Both resizes are OpenCV filters, not imresize.py's gather: MATLAB's bicubic reduction by an integer factor
is one separable FIR filter (4 x scale taps, symmetric border) sampled every ``scale`` pixels, and any
smooth enlargement serves the update (OpenCV's bicubic). Measured on an x4 280-pixel window (2-core Xeon,
beside its int8 inference): dense resize matrices 29% of the inference time, OpenCV's full separable filter
10%, this one (filter, keep every ``scale``-th row, filter) 3-5%; two rounds were 7% of a 512x512 x4 job.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from upscale_worker.engine.imresize import contributions

SETTLE = 2  # rounds of settle_clipping() after back-projection (measured: docs/pictures.md, "Tiny pictures")
LOW_PASS = np.array([0.25, 0.5, 0.25], np.float32)  # binomial: passes the mean, stops the Nyquist frequency
SETTLED = 0.5  # levels (of 255): a low-passed residual smaller than this everywhere has nothing left to move


@lru_cache(maxsize=8)
def reduction_filter(scale: int) -> tuple[np.ndarray, int]:
    """(taps, anchor) of MATLAB's bicubic ``imresize(x, 1/scale)`` as a correlation: output pixel o is the
    filter at input pixel ``scale * o`` with the anchor there (float32 taps summing to 1)."""
    middle = 8  # an output pixel far from both ends, so no tap is mirrored
    weights, indices = contributions(20 * scale, 20, 1 / scale)
    first = int(indices[middle].min())
    taps = np.zeros(int(indices[middle].max()) - first + 1, np.float32)
    taps[indices[middle] - first] = weights[middle]  # zero taps (every third at x3) were left out there
    return taps, scale * middle - first


def reduce(plane: np.ndarray, scale: int) -> np.ndarray:
    """H x W float32 with H, W multiples of ``scale`` -> H/scale x W/scale: MATLAB's bicubic
    ``imresize(plane, 1/scale)`` (antialiased, symmetric border), to float rounding. Filters down the
    columns, keeps every ``scale``-th row, then along the rows: a third of one full separable pass at x4."""
    taps, anchor = reduction_filter(scale)
    rows = cv2.filter2D(plane, cv2.CV_32F, taps[:, None], anchor=(0, anchor), borderType=cv2.BORDER_REFLECT)
    rows = rows[::scale]
    return cv2.filter2D(rows, cv2.CV_32F, taps[None, :], anchor=(anchor, 0), borderType=cv2.BORDER_REFLECT)[
        :, ::scale
    ]


def back_project(
    lr: np.ndarray,
    sr: np.ndarray,
    scale: int,
    rounds: int = 1,
    peak: float = 255.0,
    settle: int | None = None,
) -> np.ndarray:
    """``sr`` (float32 C x sH x sW) moved so that each plane's reduction (reduce()) matches ``lr``'s (float32
    C x H x W, the same range 0..``peak``), ``rounds`` times, clipped to 0..peak before each reduction;
    then, after any round, up to ``settle`` (None: SETTLE) rounds of settle_clipping(). Returns a new
    float32 C x sH x sW array, not clipped after the last round."""
    out = sr.astype(np.float32, copy=True)
    size = (out.shape[2], out.shape[1])
    for _ in range(rounds):
        for target, plane in zip(lr, out):
            residual = target - reduce(np.clip(plane, 0, peak), scale)
            plane += cv2.resize(residual, size, interpolation=cv2.INTER_CUBIC)
    if rounds:
        for target, plane in zip(lr, out):
            settle_clipping(target, plane, scale, SETTLE if settle is None else settle, peak)
    return out


def settle_clipping(lr: np.ndarray, sr: np.ndarray, scale: int, rounds: int, peak: float = 255.0) -> None:
    """Give back, in place, the local mean colour that clipping ``sr`` (float32 sH x sW) to 0..``peak`` takes
    away where it overshoots one side more than the other: up to ``rounds`` times, clip, then add the
    residual from ``lr`` (float32 H x W) low-passed by a binomial [1, 2, 1] / 4 each way (zero at the input's
    Nyquist frequency) and enlarged. Clipped pixels give the mean back on the next clip; the others keep it.

    A projection onto convex sets (Youla and Webb, 1982): the pictures within 0..peak, and those whose
    low-passed reduction matches ``lr``'s, which, unlike the full reduction, pixel-sized palette dots and
    one-pixel checkerboards can meet. Plain rounds chase the checkerboard's Nyquist component, which no
    picture in range shrinks back to, and clipping then moved its mean by up to 7.5 levels (x2). Stops
    early when no value lies SETTLED or more outside 0..peak, or the low-passed residual is under SETTLED
    everywhere: nothing is left to move."""
    size, tolerance = (sr.shape[1], sr.shape[0]), SETTLED * peak / 255.0
    for _ in range(rounds):
        if _overshoot(sr, peak) < tolerance:  # a clip that moves nothing moves no mean: no filtering
            return
        np.clip(sr, 0, peak, out=sr)
        residual = cv2.sepFilter2D(
            lr - reduce(sr, scale), cv2.CV_32F, LOW_PASS, LOW_PASS, borderType=cv2.BORDER_REFLECT
        )
        if np.abs(residual).max() < tolerance:
            return
        sr += cv2.resize(residual, size, interpolation=cv2.INTER_CUBIC)


def _overshoot(plane: np.ndarray, peak: float) -> float:
    """How far the plane's values reach outside 0..peak (0 when inside), from its extremes alone."""
    low, high, _, _ = cv2.minMaxLoc(plane)
    return max(-low, high - peak, 0.0)
