"""Training data: HR images from a folder tree, LR made once by MATLAB bicubic, random aligned patches."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.metrics import mod_crop

IMAGE_SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def split_validation(paths: list[Path], every: int = 40) -> tuple[list[Path], list[Path]]:
    """Hold out every ``every``-th image (by sorted path) for validation and checkpoint choice."""
    val = paths[::every]
    return [p for p in paths if p not in val], val


def load_pair(path: Path, scale: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) uint8 RGB arrays, HR mod-cropped to the scale; LR cached on disk because it is slow."""
    hr = mod_crop(np.asarray(Image.open(path).convert("RGB")), scale)
    if cache is None:
        return imresize(hr, 1 / scale), hr
    key = hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{scale}".encode()).hexdigest()[:16]
    cached = cache / f"x{scale}" / f"{key}.png"
    if cached.exists():
        return np.asarray(Image.open(cached)), hr
    lr = imresize(hr, 1 / scale)
    cached.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(lr).save(cached)
    return lr, hr


class PatchSampler:
    """Random LR/HR patch pairs with flips and 90-degree rotations, drawn from images held in memory."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int, patch: int, seed: int = 0):
        self.pairs = [p for p in pairs if min(p[0].shape[:2]) >= patch]
        self.scale, self.patch = scale, patch
        self.rng = np.random.default_rng(seed)
        # Sample images in proportion to their area so every pixel is equally likely.
        areas = np.array([lr.shape[0] * lr.shape[1] for lr, _ in self.pairs], dtype=np.float64)
        self.weights = areas / areas.sum()

    def one(self) -> tuple[np.ndarray, np.ndarray]:
        lr, hr = self.pairs[self.rng.choice(len(self.pairs), p=self.weights)]
        p, s = self.patch, self.scale
        y = int(self.rng.integers(0, lr.shape[0] - p + 1))
        x = int(self.rng.integers(0, lr.shape[1] - p + 1))
        lr_patch = lr[y : y + p, x : x + p]
        hr_patch = hr[y * s : (y + p) * s, x * s : (x + p) * s]
        k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
        lr_patch, hr_patch = np.rot90(lr_patch, k), np.rot90(hr_patch, k)
        if flip:
            lr_patch, hr_patch = lr_patch[:, ::-1], hr_patch[:, ::-1]
        return lr_patch, hr_patch

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """NCHW float32 batches in 0..255."""
        lrs, hrs = zip(*(self.one() for _ in range(size)))
        to_nchw = lambda xs: np.ascontiguousarray(np.stack(xs).transpose(0, 3, 1, 2), dtype=np.float32)  # noqa: E731
        return to_nchw(lrs), to_nchw(hrs)
