"""Small copies of an input or a result, for the comparison slider and the history: JPEG when opaque (fast to
encode), WebP when there is transparency. Made from a Pillow image, or from the engine's result still in
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
