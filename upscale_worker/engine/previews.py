"""Small copies of an input or a result, for the comparison slider and the history, and of a result while it
is made (PartialPreview): JPEG when opaque (fast to encode), WebP when there is transparency. Made from a Pillow image, or from the engine's result still in
memory (decoding the written result again would cost far more)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageOps

from upscale_worker.engine import pixels
from upscale_worker.engine.pixels import cmyk_to_srgb
from upscale_worker.engine.tiling import Grid


def preview(im: Image.Image, size: int) -> tuple[str, bytes]:
    """A copy of ``im`` at most ``size`` pixels a side, upright (EXIF), CMYK through its profile as the engine
    reads it: (extension "jpg" or "webp", encoded bytes). Draws ``im`` in draft mode (JPEG: a fraction of
    the decoding)."""
    im.draft("RGB", (size, size))
    if im.mode == "CMYK":
        im = cmyk_to_srgb(im)
    im = ImageOps.exif_transpose(im)
    alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
    im = im.convert("RGBA" if alpha else "RGB")
    im.thumbnail((size, size))
    buf = io.BytesIO()
    if alpha:
        im.save(buf, "WEBP", quality=85, method=0)
    else:
        im.save(buf, "JPEG", quality=85)
    return ("webp" if alpha else "jpg"), buf.getvalue()


def pixels_preview(rgb: np.ndarray, alpha: np.ndarray | None, size: int) -> tuple[str, bytes]:
    """preview() of an upscaled H x W x 3 array (uint8 or uint16) and its H x W alpha (or None) still in
    memory: OpenCV shrinks it straight to the preview's size (no full-size copy, faster than Pillow's
    thumbnail), Pillow encodes it."""
    h, w = rgb.shape[:2]
    shrink = min(1.0, size / max(w, h))
    fitted = (max(1, round(w * shrink)), max(1, round(h * shrink)))
    small = np.dstack(
        [cv2.resize(x, fitted, interpolation=cv2.INTER_AREA) for x in (rgb, alpha) if x is not None]
    )
    if small.dtype == np.uint16:
        small = np.rint(small / 257.0).astype(np.uint8)
    return preview(Image.fromarray(small), size)


def input_previews(src: BinaryIO, side: int, sizes: Sequence[int]) -> list[tuple[str, bytes]]:
    """pixels_preview() of an input file read as the engine reads it (16-bit, grey keys, CMYK through its
    profile, orientation: Pillow alone clipped 16-bit grey to white), once per size in ``sizes``. ``side`` is
    the picture's longer side in pixels (0 if unknown): a JPEG then decodes at a fraction of its size (DCT
    scaling) where the largest preview allows. Raises EngineError for a damaged image."""
    picture = pixels.load(src, draft=max(1, side // max(sizes)))
    return [pixels_preview(picture.rgb, picture.alpha, size) for size in sizes]


class PartialPreview:
    """The result while it is made, small: a preview (at most ``size`` pixels a side) of the picture where
    each finished window is drawn from its upscaled interior and the rest from the input enlarged and dimmed,
    so a person sees which part is done. Always opaque JPEG (a transparent picture's alpha waits for the
    result). Memory: one preview-sized canvas; each window is shrunk once, when it is added.

    ``rgb``: the picture the engine upscales (H x W x 3, uint8 or uint16, upright); ``cut``: its windows
    (tiling.Grid, whose ``kept(index)`` says where each interior goes in the upscaled picture)."""

    DIM = 0.55  # what is not computed yet keeps this share of its contrast, drawn towards mid-grey

    def __init__(self, rgb: np.ndarray, cut: Grid, size: int) -> None:
        h, w = rgb.shape[:2]
        shrink = min(1.0, size / max(w * cut.scale, h * cut.scale))
        self.cut, self.size = cut, size
        self.width, self.height = max(1, round(w * cut.scale * shrink)), max(1, round(h * cut.scale * shrink))
        base = _uint8(cv2.resize(rgb, (self.width, self.height), interpolation=_fitting(w, self.width)))
        self.canvas = (base * self.DIM + 128 * (1 - self.DIM)).astype(np.uint8)
        self.done: set[int] = set()

    def add(self, index: int, interior: np.ndarray) -> None:
        """Draw window ``index``'s upscaled interior (sH' x sW' x 3, the picture's dtype) into the preview.
        Raises ValueError when its shape is not the window's."""
        rows, cols = self.cut.kept(index)
        if interior.shape[:2] != (rows.stop - rows.start, cols.stop - cols.start):
            raise ValueError(f"window {index} has shape {interior.shape}, not its interior's")
        fy, fx = (
            self.height / (self.cut.height * self.cut.scale),
            self.width / (self.cut.width * self.cut.scale),
        )
        y0, y1 = round(rows.start * fy), round(rows.stop * fy)
        x0, x1 = round(cols.start * fx), round(cols.stop * fx)
        if y1 > y0 and x1 > x0:
            small = cv2.resize(
                interior, (x1 - x0, y1 - y0), interpolation=_fitting(interior.shape[1], x1 - x0)
            )
            self.canvas[y0:y1, x0:x1] = _uint8(small)
        self.done.add(index)

    def encode(self, quality: int = 80) -> bytes:
        """The preview as JPEG bytes (Pillow, ``quality`` on the IJG scale)."""
        buf = io.BytesIO()
        Image.fromarray(self.canvas).save(buf, "JPEG", quality=quality)
        return buf.getvalue()


def _fitting(source: int, target: int) -> int:
    """OpenCV's interpolation for a resize from ``source`` to ``target`` pixels: area when shrinking
    (no aliasing), bilinear when enlarging."""
    return cv2.INTER_AREA if target < source else cv2.INTER_LINEAR


def _uint8(a: np.ndarray) -> np.ndarray:
    return np.rint(a / 257.0).astype(np.uint8) if a.dtype == np.uint16 else a
