"""Training data: HR images from a folder tree, LR made once by MATLAB bicubic, random aligned patches,
optionally JPEG-compressed as a phone or a web page would (the JPEG-aware twins)."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
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


JPEG_BLOCK = 16  # a 4:2:0 JPEG's MCU: 8x8 DCT blocks of chroma subsampled 2x2


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Encode ``rgb`` (HxWx3 uint8) as a baseline JPEG at IJG ``quality`` (1..95) with 4:2:0 chroma
    subsampling, as cameras and Pillow's default do, and decode it: HxWx3 uint8."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, "JPEG", quality=int(quality), subsampling="4:2:0")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@dataclass(frozen=True)
class JpegDegradation:
    """Each LR patch is JPEG-compressed at a quality drawn uniformly from ``low..high`` (IJG scale),
    except a ``clean`` share left as it is. The patch is compressed on its own, with its top-left corner
    on the block grid, so its side must be a multiple of the 16-pixel MCU: then every block is whole and
    the artefacts are those of a real file, not of a partial edge block."""

    low: int = 30
    high: int = 95
    clean: float = 0.1

    @classmethod
    def parse(cls, text: str, clean: float) -> JpegDegradation:
        """``"30-95"`` -> JpegDegradation(30, 95, clean). Raises ValueError on anything else."""
        low, _, high = text.partition("-")
        degradation = cls(int(low), int(high or low), clean)
        if not 1 <= degradation.low <= degradation.high <= 95 or not 0 <= clean < 1:
            raise ValueError(f"JPEG quality range {text!r} must lie in 1-95 and the clean share in [0, 1)")
        return degradation

    def check_patch(self, patch: int) -> None:
        if patch % JPEG_BLOCK:
            raise ValueError(f"a JPEG-degraded LR patch side must be a multiple of {JPEG_BLOCK}, not {patch}")

    def __call__(self, lr_patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.clean:
            return lr_patch
        return jpeg_roundtrip(lr_patch, int(rng.integers(self.low, self.high + 1)))


class PatchSampler:
    """Random LR/HR patch pairs with flips and 90-degree rotations, drawn from images held in memory;
    with a ``degradation`` the LR patch is compressed before the flips (a file is compressed upright)."""

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        scale: int,
        patch: int,
        seed: int = 0,
        degradation: JpegDegradation | None = None,
    ):
        if degradation is not None:
            degradation.check_patch(patch)
        self.pairs = [p for p in pairs if min(p[0].shape[:2]) >= patch]
        self.scale, self.patch, self.degradation = scale, patch, degradation
        self.jpeg_rng = np.random.default_rng([seed, 1])  # its own stream: the same patches with or without
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
        if self.degradation is not None:
            lr_patch = self.degradation(lr_patch, self.jpeg_rng)
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
