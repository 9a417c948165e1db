"""PSNR and SSIM on the Y channel, by the protocol of the EDSR paper's tables.

Y is MATLAB's ``rgb2ycbcr`` luma (BT.601, 16..235), ``scale`` pixels are shaved from every border, and
SSIM is Wang et al.'s with an 11x11 Gaussian window (sigma 1.5) on the 0..255 range.
"""

from __future__ import annotations

import cv2
import numpy as np


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma in 16..235 as float64 from an RGB (or grey) uint8-range image."""
    x = img.astype(np.float64)
    if x.ndim == 2:
        return x
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def _shave(y: np.ndarray, border: int) -> np.ndarray:
    return y[border:-border, border:-border] if border > 0 else y


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a, b = _shave(rgb_to_y(sr), border), _shave(rgb_to_y(hr), border)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a, b = _shave(rgb_to_y(sr), border), _shave(rgb_to_y(hr), border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    win = cv2.getGaussianKernel(11, 1.5)
    win = win @ win.T
    blur = lambda x: cv2.filter2D(x, -1, win)[5:-5, 5:-5]  # noqa: E731  ('valid' region, as MATLAB)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim.mean())


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
