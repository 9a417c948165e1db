"""Engine fixtures: a random-initialised EDSR checkpoint exported through the real export path."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import configure_engine
from training import export
from training.edsr import EDSR
from upscale_worker.engine.config import DEFAULT_TILES

ROOT = Path(__file__).resolve().parents[2]
TILE = 64  # small tiles keep tests fast and still cut small images into several tiles
WINDOW_AREA = TILE * 3 // 2 * TILE  # fitted windows as small: tests' images get several, often not square
SET5 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "benchmark" / "Set5"


def random_checkpoint(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    path = folder / f"random_x2_seed{seed}.pt"
    torch.save(EDSR.baseline(2).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("checkpoint"), 0)


@pytest.fixture(scope="session")
def jpeg_checkpoint(tmp_path_factory) -> Path:
    """Other random weights, exported as the JPEG-aware twin: its outputs differ from the clean model's."""
    return random_checkpoint(tmp_path_factory.mktemp("checkpoint"), 1)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, checkpoint, jpeg_checkpoint) -> Path:
    """The x2 clean model and its JPEG-aware twin, each with its int8 IR."""
    folder = tmp_path_factory.mktemp("models")
    for weights, variant in ((checkpoint, "clean"), (jpeg_checkpoint, "jpeg")):
        export.main(
            [
                "--weights",
                str(weights),
                "--out",
                str(folder),
                "--training-data",
                "none (random weights)",
                "--calibration-crops",
                "4",
                "--crop",
                "32",
                "--variant",
                variant,
            ]
        )
    return folder


@pytest.fixture(scope="session")
def rlfn_models(tmp_path_factory, models_dir) -> Path:
    """The random EDSR models beside the authors' RLFN x2 (real weights: its seams need real attention),
    exported through the real export path in the engine's grid variant, f32 only."""
    from training import rlfn

    folder = tmp_path_factory.mktemp("rlfn-models")
    shutil.copytree(models_dir, folder, dirs_exist_ok=True)
    weights = rlfn.PUBLISHED / "rlfn_x2.pth"
    export.main(["--weights", str(weights), "--out", str(folder), "--training-data", "authors'", "--no-int8"])
    return folder


@pytest.fixture
def with_rlfn(rlfn_models, engine_env, monkeypatch) -> Path:
    configure_engine(monkeypatch, models_dir=rlfn_models)
    return rlfn_models


@pytest.fixture(autouse=True)
def engine_env(models_dir, monkeypatch, tmp_path_factory):
    configure_engine(
        monkeypatch,
        models_dir=models_dir,
        tiles=(TILE,),
        window_area=WINDOW_AREA,
        precision="f32",
        cache_dir=tmp_path_factory.getbasetemp() / "ov-cache",
        window_costs=tmp_path_factory.getbasetemp() / "no-window-costs.json",  # never this host's table
    )


@pytest.fixture(scope="session")
def shipped_models(tmp_path_factory) -> Path:
    """A snapshot of the shipped models/ (trained weights, every scale): models/ may be rewritten while the
    tests run. Colour and border checks need trained weights: random ones shift colours anyway."""
    folder = tmp_path_factory.mktemp("shipped-models")
    shutil.copytree(ROOT / "models", folder, dirs_exist_ok=True)
    return folder


@pytest.fixture
def shipped(shipped_models, monkeypatch):
    """The engine as shipped: trained models, default precision and tiles (after engine_env, autouse)."""
    configure_engine(monkeypatch, models_dir=shipped_models, precision=None, tiles=DEFAULT_TILES)
    return shipped_models


def gradient(width: int, height: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth but not flat test pattern (16-bit: with values that 8 bits cannot hold)."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [
        (x * 3 + y) % 256,
        (x * 255) // max(1, width - 1),
        (y * 255) // max(1, height - 1),
        255 - x % 256,
    ]
    img = np.stack(planes[:channels], axis=-1).astype(np.float64)
    if dtype == np.uint16:
        img = img * 257 + (x % 7)[..., None]
    img = img.astype(dtype)
    return img[..., 0] if channels == 1 else img


def encode(img: np.ndarray | Image.Image, fmt: str = "PNG", **options) -> bytes:
    im = img if isinstance(img, Image.Image) else Image.fromarray(img)
    buf = io.BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))
