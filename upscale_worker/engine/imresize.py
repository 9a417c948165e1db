"""MATLAB-compatible bicubic ``imresize`` in numpy.

The EDSR paper (and every SR table it is compared with) makes its low-resolution inputs with MATLAB's
``imresize(img, 1/scale, 'bicubic')``, which antialiases when downscaling. PIL and OpenCV bicubic differ
from it by tenths of a dB, so training, evaluation and the bicubic baseline all call this one function.
"""

from __future__ import annotations

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


def contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights and source indices (symmetric padding) for one axis, as MATLAB computes them."""
    kernel_width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel when shrinking
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        kernel_width /= scale
    else:
        kernel = _cubic
    out = np.arange(1, out_len + 1, dtype=np.float64)
    centre = out / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(centre - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(centre[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    indices = mirror[np.mod(indices - 1, 2 * in_len).astype(np.int64)]
    used = np.any(weights != 0, axis=0)
    return weights[:, used], indices[:, used]


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    weights, indices = contributions(img.shape[axis], out_len, scale)
    moved = np.moveaxis(img, axis, 0)
    gathered = moved[indices]  # (out_len, taps, ...)
    w = weights.reshape(weights.shape + (1,) * (moved.ndim - 1))
    return np.moveaxis((gathered * w).sum(axis=1), 0, axis)


def imresize(img: np.ndarray, scale: float, *, as_uint8: bool | None = None) -> np.ndarray:
    """Resize an HxW or HxWxC image by ``scale`` like MATLAB's ``imresize(img, scale, 'bicubic')``.

    uint8 input gives uint8 output (rounded and clipped, as MATLAB does) unless ``as_uint8`` says otherwise.
    """
    if as_uint8 is None:
        as_uint8 = img.dtype == np.uint8
    h, w = img.shape[:2]
    out_h, out_w = int(np.ceil(h * scale)), int(np.ceil(w * scale))
    x = img.astype(np.float64)
    # MATLAB resizes rows first when both scales are equal.
    x = _resize_axis(x, 0, out_h, scale)
    x = _resize_axis(x, 1, out_w, scale)
    if as_uint8:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x
