"""PSNR/SSIM of the engine on a benchmark set, by the EDSR paper's protocol (see engine/metrics.py).

HR images are read from the folder (or its HR/ subfolder), mod-cropped to the scale, downscaled with
MATLAB-compatible bicubic; the engine's output and plain bicubic upscaling are scored on Y with a border
of ``scale`` pixels shaved. Set5 x4 bicubic must give 28.42 dB: that checks the protocol.

With a JPEG quality (issue 12) each LR is also saved by Pillow as a JPEG at that quality with 4:2:0 chroma
subsampling (Pillow's default, as cameras do) and decoded, and bicubic, the clean model and the JPEG-aware
model all start from the same decoded LR.
"""

from __future__ import annotations

import io
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


def jpeg_decoded(rgb: np.ndarray, quality: int) -> np.ndarray:
    """H x W x 3 uint8 -> the same after a Pillow JPEG round trip at ``quality`` (1..100), 4:2:0."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling="4:2:0")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def low_resolution(hr: np.ndarray, scale: int, jpeg_quality: int | None = None) -> np.ndarray:
    """The LR input of the protocol: MATLAB bicubic downscale, then a JPEG round trip when asked."""
    lr = imresize(hr, 1 / scale)
    return lr if jpeg_quality is None else jpeg_decoded(lr, jpeg_quality)


def score(
    hr: np.ndarray, scale: int, options: Options | None, jpeg_quality: int | None = None
) -> tuple[float, float, float, float]:
    lr = low_resolution(hr, scale, jpeg_quality)
    bicubic = imresize(lr, scale)
    scores = (psnr_y(bicubic, hr, scale), ssim_y(bicubic, hr, scale))
    if options is None:
        return (*scores, float("nan"), float("nan"))
    sr = upscale_array(lr, scale, options)
    return (*scores, psnr_y(sr, hr, scale), ssim_y(sr, hr, scale))


def hr_arrays(folder: Path, scale: int):
    """(name, HR mod-cropped to ``scale``) per image of the set. Raises EngineError for an empty folder."""
    images = hr_images(folder)
    if not images:
        raise EngineError(f"No images in {folder} (nor in its HR/ subfolder).")
    for path in images:
        yield path.stem, mod_crop(np.asarray(Image.open(path).convert("RGB")), scale)


def evaluate(
    folder: Path, scale: int, options: Options | None = Options(), jpeg_quality: int | None = None
) -> list[Row]:
    """One row per image; ``options=None`` scores bicubic alone; ``jpeg_quality``: LR saved as such a JPEG."""
    return [Row(name, *score(hr, scale, options, jpeg_quality)) for name, hr in hr_arrays(folder, scale)]


@dataclass(frozen=True)
class JpegRow:
    """Y-PSNR (dB) of one image whose LR was JPEG-compressed: bicubic, the clean and the JPEG-aware model."""

    image: str
    bicubic: float
    clean: float
    jpeg: float = float("nan")  # nan when the scale has no JPEG-aware model


def evaluate_jpeg(
    folder: Path,
    scale: int,
    quality: int,
    precision: str | None = None,
    variants: tuple[str, ...] = ("clean", "compressed"),
    network: str | None = None,
) -> list[JpegRow]:
    """One row per image, every column computed from the same decoded JPEG LR at ``quality``; ``variants``
    are the sources to score (drop "compressed" when the scale has no JPEG-aware model). Raises EngineError."""
    rows = []
    for name, hr in hr_arrays(folder, scale):
        lr = low_resolution(hr, scale, quality)
        options = {
            v: Options(precision=precision, source=v, input_quality=quality, network=network)
            for v in variants
        }
        psnr = {v: psnr_y(upscale_array(lr, scale, options[v]), hr, scale) for v in variants}
        rows.append(
            JpegRow(
                name,
                psnr_y(imresize(lr, scale), hr, scale),
                psnr.get("clean", float("nan")),
                psnr.get("compressed", float("nan")),
            )
        )
    return rows


def mean_jpeg_row(rows: list[JpegRow]) -> JpegRow:
    return JpegRow("mean", *(float(np.mean(c)) for c in zip(*[(r.bicubic, r.clean, r.jpeg) for r in rows])))


def jpeg_table(by_quality: dict[int, list[JpegRow]], scale: int, model_label: str) -> str:
    """Per quality, the images and their mean; then the means and each model's gain over bicubic."""
    number = lambda v: f"{v:10.3f}" if v == v else f"{'-':>10}"  # noqa: E731
    head = f"{'image':<16} {'bicubic':>10} {'clean':>10} {'JPEG-aware':>10}"
    lines = []
    for quality, rows in by_quality.items():
        lines += [f"JPEG quality {quality}:", head]
        lines += [f"{r.image:<16} {number(r.bicubic)} {number(r.clean)} {number(r.jpeg)}" for r in rows]
        mean = mean_jpeg_row(rows)
        lines += [
            "-" * len(head),
            f"{'mean':<16} {number(mean.bicubic)} {number(mean.clean)} {number(mean.jpeg)}",
            "",
        ]
    lines += [f"{'quality':<8} {'bicubic':>8} {'clean':>8} {'gain':>6} {'JPEG-aware':>10} {'gain':>6}"]
    for quality, rows in by_quality.items():
        m = mean_jpeg_row(rows)
        jpeg = f"{m.jpeg:10.2f} {m.jpeg - m.bicubic:+6.2f}" if m.jpeg == m.jpeg else f"{'-':>10} {'-':>6}"
        lines.append(f"{quality:<8} {m.bicubic:8.2f} {m.clean:8.2f} {m.clean - m.bicubic:+6.2f} {jpeg}")
    return "\n".join(lines) + (
        f"\n(x{scale}, {model_label}; PSNR in dB on Y, BT.601, {scale}-pixel border "
        "shaved; LR: MATLAB bicubic, then Pillow JPEG at the quality, 4:2:0, decoded)"
    )


def mean_row(rows: list[Row]) -> Row:
    columns = zip(*[(r.bicubic_psnr, r.bicubic_ssim, r.psnr, r.ssim) for r in rows])
    return Row("mean", *(float(np.mean(c)) for c in columns))


def table(rows: list[Row], scale: int, model_label: str) -> str:
    lines = [f"{'image':<16} {'bicubic PSNR':>12} {'SSIM':>7} {model_label + ' PSNR':>16} {'SSIM':>7}"]
    number = lambda v, width, digits: f"{v:{width}.{digits}f}" if v == v else f"{'-':>{width}}"  # noqa: E731
    for r in [*rows, mean_row(rows)]:
        lines.append(
            f"{r.image:<16} {number(r.bicubic_psnr, 12, 3)} {number(r.bicubic_ssim, 7, 4)} "
            f"{number(r.psnr, 16, 3)} {number(r.ssim, 7, 4)}"
        )
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines) + f"\n(x{scale}; PSNR in dB and SSIM on Y, BT.601, {scale}-pixel border shaved)"
