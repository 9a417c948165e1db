"""Engine fixtures: random-initialised EDSR exported through the real export path into a temporary folder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training import export

TILE = 64  # small tiles keep tests fast and still cut small images into several tiles


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    export.main(["--random", "--scale", "2", "--no-int8", "--out", str(folder)])
    return folder


@pytest.fixture(autouse=True)
def engine_env(models_dir, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("UPSCALE_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("UPSCALE_TILE", str(TILE))
    monkeypatch.setenv("UPSCALE_PRECISION", "f32")
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "ov-cache"))


def gradient(width: int, height: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth but not flat test pattern."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [(x * 3 + y) % 256, (x * 255) // max(1, width - 1), (y * 255) // max(1, height - 1), 255 - x % 256]
    img = np.stack(planes[:channels], axis=-1).astype(np.float64)
    if dtype == np.uint16:
        img = img * 257 + (x % 7)[..., None]  # values that 8 bits cannot hold
    return img.astype(dtype)


def encode(img: np.ndarray | Image.Image, fmt: str = "PNG", **options) -> bytes:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()
