"""PSNR/SSIM of the engine on a benchmark set, by the EDSR paper's protocol (see engine/metrics.py).

HR images are read from the folder (or its HR/ subfolder), mod-cropped to the scale, downscaled with
MATLAB-compatible bicubic; the engine's output and plain bicubic upscaling are scored on Y with a border
of ``scale`` pixels shaved. Set5 x4 bicubic must give 28.42 dB: that checks the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from upscale_worker.engine import EngineError, Options, upscale_array
from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.metrics import mod_crop, psnr_y, ssim_y

SUFFIXES = {".png", ".bmp", ".jpg", ".jpeg", ".webp"}


@dataclass(frozen=True)
class Row:
    image: str
    bicubic_psnr: float
    bicubic_ssim: float
    psnr: float = float("nan")  # the model's; nan when there is no model for the scale
    ssim: float = float("nan")


def hr_images(folder: Path) -> list[Path]:
    folder = folder / "HR" if (folder / "HR").is_dir() else folder
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)


def score(hr: np.ndarray, scale: int, options: Options | None) -> tuple[float, float, float, float]:
    lr = imresize(hr, 1 / scale)
    bicubic = imresize(lr, scale)
    scores = (psnr_y(bicubic, hr, scale), ssim_y(bicubic, hr, scale))
    if options is None:
        return scores + (float("nan"), float("nan"))
    sr = upscale_array(lr, scale, options)
    return scores + (psnr_y(sr, hr, scale), ssim_y(sr, hr, scale))


def evaluate(folder: Path, scale: int, options: Options | None = Options()) -> list[Row]:
    """One row per image; ``options=None`` scores bicubic alone."""
    images = hr_images(folder)
    if not images:
        raise EngineError(f"No images in {folder} (nor in its HR/ subfolder).")
    rows = []
    for path in images:
        hr = mod_crop(np.asarray(Image.open(path).convert("RGB")), scale)
        rows.append(Row(path.stem, *score(hr, scale, options)))
    return rows


def mean_row(rows: list[Row]) -> Row:
    columns = zip(*[(r.bicubic_psnr, r.bicubic_ssim, r.psnr, r.ssim) for r in rows])
    return Row("mean", *(float(np.mean(c)) for c in columns))


def table(rows: list[Row], scale: int, model_label: str) -> str:
    lines = [f"{'image':<16} {'bicubic PSNR':>12} {'SSIM':>7} {model_label + ' PSNR':>16} {'SSIM':>7}"]
    number = lambda v, width, digits: f"{v:{width}.{digits}f}" if v == v else f"{'-':>{width}}"  # noqa: E731
    for r in rows + [mean_row(rows)]:
        lines.append(f"{r.image:<16} {number(r.bicubic_psnr, 12, 3)} {number(r.bicubic_ssim, 7, 4)} "
                     f"{number(r.psnr, 16, 3)} {number(r.ssim, 7, 4)}")
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines) + f"\n(x{scale}; PSNR in dB and SSIM on Y, BT.601, {scale}-pixel border shaved)"
