"""Iterative back-projection (Irani and Peleg, 1991): make the upscaled picture shrink back to its input.

Each round shrinks the result with MATLAB bicubic (the degradation the models were trained to invert),
takes the difference from the input and adds it back enlarged: ``sr += up(lr - down(clip(sr)))``. EDSR
is slightly biased on saturated colours and sharpens hard edges past 0 and 255; clipping then shifts small
synthetic pictures' colours (PngSuite's 1- and 2-bit palettes, gamma ramps). Measured in models/README.md
("Back-projection"). After the JPEG-aware models only for inputs of quality 90 or more (api.rounds): against
a more strongly compressed input it would put back the blocks and ringing that the model removed.

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
    lr: np.ndarray, sr: np.ndarray, scale: int, rounds: int = 1, peak: float = 255.0
) -> np.ndarray:
    """``sr`` (float32 C x sH x sW) moved so that each plane's reduction (reduce()) matches ``lr``'s (float32
    C x H x W, the same range 0..``peak``), ``rounds`` times, clipped to 0..peak before each reduction.
    Returns a new float32 C x sH x sW array, not clipped after the last round."""
    out = sr.astype(np.float32, copy=True)
    size = (out.shape[2], out.shape[1])
    for _ in range(rounds):
        for target, plane in zip(lr, out):
            residual = target - reduce(np.clip(plane, 0, peak), scale)
            plane += cv2.resize(residual, size, interpolation=cv2.INTER_CUBIC)
    return out
