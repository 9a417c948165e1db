"""Pixels in and out, decided in one place.

Decoded images become RGB numpy arrays (uint8, or uint16 for 16-bit PNG) with an optional separate alpha;
the model sees float32 RGB in 0..255 (EDSR's mean shift is inside the network). Results are clipped,
rounded and cast back to the input's bit depth only at the end. The ICC profile is always re-embedded:
it says what the pixel values mean, and EDSR maps values to values, so stripping it would shift colours.
EXIF (orientation reset, since it is applied to the pixels) and XMP are kept only on request.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import pi_heif
from isal import isal_zlib
from numpy.typing import DTypeLike
from PIL import Image, ImageCms, TiffImagePlugin, UnidentifiedImageError

from upscale_worker.engine import header, structure, tiff
from upscale_worker.engine.errors import Cancelled, EngineError
from upscale_worker.engine.vocabulary import OUTPUT_FORMATS

# Animated GIF/WebP/PNG: the first frame only (the upload check refuses animations); MPO: its first picture.
READABLE_FORMATS = {"PNG", "JPEG", "MPO", "WEBP", "HEIF", "AVIF", "TIFF", "BMP", "GIF"}
READABLE = f"use {header.names()}"
WRITABLE = f"choose {header.names(OUTPUT_FORMATS)}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXIF_ORIENTATION = 0x0112
EXIF_X_RESOLUTION, EXIF_Y_RESOLUTION, EXIF_RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
EXIF_SUB_IFDS = (0x8769, 0x8825, 0xA005)  # Exif, GPS, interoperability
PNG_COLOUR_CHUNKS = (b"gAMA", b"cHRM", b"sRGB")
JPEG_SEGMENT_BYTES = {"exif": 65_533, "xmp": 65_504}  # what Pillow writes into one JPEG APP1 segment
SRGB = ImageCms.createProfile("sRGB")
PNG_BAND_ROWS = 256
PNG_DEFLATE_LEVEL = 1  # ISA-L's levels are 0-3; 2 and 3 were no smaller on Set14 x4 and no faster
PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey + alpha, RGB, RGBA
RESIZE_FILTER = Image.Resampling.LANCZOS  # shrinking to a target: see resize()


@dataclass(frozen=True)
class Picture:
    rgb: np.ndarray  # H x W x 3, uint8 or uint16
    alpha: np.ndarray | None  # H x W, same dtype; None when absent or fully opaque
    grey: bool
    opaque_alpha: bool = False  # an alpha channel that is fully opaque: written back as one, never upscaled
    icc: bytes | None = None
    exif: bytes | None = None  # with orientation reset to 1
    xmp: bytes | None = None  # with tiff:Orientation reset to 1
    colour_chunks: bytes = b""  # a PNG's gAMA, cHRM and sRGB chunks, raw
    dpi: tuple[float, float] | None = None  # (x, y) pixels per inch as displayed, when the file says

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def with_pixels(self, rgb: np.ndarray, alpha: np.ndarray | None) -> Picture:
        return replace(self, rgb=rgb, alpha=alpha)


def peak(dtype: DTypeLike) -> int:
    return np.iinfo(dtype).max


def to_model(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 H x W x 3 -> float32 1 x 3 x H x W in 0..255, the model's input."""
    x = pixels.astype(np.float32) * (255.0 / peak(pixels.dtype))
    return x.transpose(2, 0, 1)[None]


def from_model(output: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float 1 x 3 x H x W in 0..255 -> H x W x 3 of ``dtype``: scale, round half to even, clip.

    OpenCV's saturating cast does all three in one pass per plane, a third of numpy's time on each window."""
    depth = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}[np.dtype(dtype)]
    return cv2.merge([cv2.multiply(plane, peak(dtype) / 255.0, dtype=depth) for plane in output[0]])


# --- reading ---------------------------------------------------------------------------------------------


class _Cancellable(io.BytesIO):
    """The file's bytes for Pillow, which reads them 64 KB at a time while it decodes: each read first asks
    ``cancelled()`` (which the caller keeps cheap), so a long decode stops on cancel."""

    def __init__(self, data: bytes, cancelled: Callable[[], bool]):
        super().__init__(data)
        self.cancelled = cancelled

    def read(self, size: int | None = -1) -> bytes:
        if self.cancelled():
            raise Cancelled()
        return super().read(size)


def load(
    src: str | Path | BinaryIO, draft: int = 1, cancelled: Callable[[], bool] = lambda: False
) -> Picture:
    """Decode ``src`` (PNG, JPEG, MPO's first picture, WebP, HEIC's primary image, AVIF, TIFF, BMP, GIF's first frame) into a Picture, oriented
    as displayed. ``draft`` > 1 lets a JPEG decode at up to 1/``draft`` the size (DCT scaling: 1/2, 1/4, 1/8).
    The structure is bounded first (structure.py). Raises EngineError with a sentence for the user, Cancelled
    when ``cancelled()`` turns True while the file is read."""
    data = src.read() if hasattr(src, "read") else Path(src).read_bytes()
    if data.startswith(header.MAGIC["jpeg"]):
        header.check_jpeg_frame(io.BytesIO(data))  # lossless, hierarchical or 12-bit: named, not "unreadable"
    structure.check(data, header.sniff(data[:64]) or "", first_frame=True)
    data = structure.without_oversized_chunks(data)
    try:
        with Image.open(_Cancellable(data, cancelled)) as im:
            if im.format not in READABLE_FORMATS:
                raise EngineError(f"{im.format} images are not supported; {READABLE}.")
            if draft > 1:
                im.draft(None, (math.ceil(im.width / draft), math.ceil(im.height / draft)))
            depth, grey = _depth(data, im)
            if im.format == "HEIF" and depth > 8:
                rgba, grey = _decode_deep_heif(data), False
            elif depth == 16:
                rgba = _decode_16bit(data, bool(grey), im.info.get("transparency"))
            else:
                _decode(im)
                rgba, grey = _decode_8bit(im, depth)
            exif = read_exif(im)  # after the pixels: Pillow decodes a PNG whose eXIf follows them to find it
            if im.format == "TIFF":  # its "EXIF" is every tag of the file: only the orientation is kept
                exif = _only_orientation(exif)
            turn = header.orientation(exif.get(EXIF_ORIENTATION))
            picture = _picture(orient(rgba, turn), bool(grey), im, exif, _png_colour_chunks(data))
            return replace(picture, dpi=read_dpi(im.info, turn))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise EngineError(f"The file is not an image that can be read ({READABLE}).") from e


def read_dpi(info: dict, orientation: int = 1) -> tuple[float, float] | None:
    """(x, y) pixels per inch from a Pillow ``info`` (PNG pHYs, JPEG JFIF or EXIF, TIFF and BMP resolution),
    swapped for orientations 5-8 (they swap the sides); None when absent or not positive."""
    dpi = info.get("dpi") or ()
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (x > 0 and y > 0):
        return None
    return (y, x) if orientation in (5, 6, 7, 8) else (x, y)


def read_exif(im: Image.Image) -> Image.Exif:
    """The image's EXIF (XMP's orientation merged in, as Pillow does); empty when unreadable: malformed EXIF
    is common in the wild and never fatal."""
    try:
        return im.getexif()
    except Exception:
        return Image.Exif()


def exif_bytes(exif: Image.Exif) -> bytes | None:
    """``exif`` serialised, without the tags that cannot be (a string where a number belongs: cameras and
    editors write such tags); None when nothing is left."""
    try:
        return exif.tobytes() if len(exif) else None
    except Exception:
        pass
    for ifd_tag in (None, *(t for t in EXIF_SUB_IFDS if t in exif)):
        tags = exif if ifd_tag is None else exif.get_ifd(ifd_tag)
        for tag in [t for t in list(tags) if t not in EXIF_SUB_IFDS and not _writable(ifd_tag, t, tags[t])]:
            del tags[tag]
    try:
        return exif.tobytes() if len(exif) else None
    except Exception:
        return None


def with_exif_density(exif: bytes | None, dpi: float) -> bytes | None:
    """EXIF bytes whose resolution (XResolution, YResolution, ResolutionUnit: inches) says ``dpi``, so that
    kept EXIF agrees with the density a print target writes (JFIF, pHYs); EXIF without a resolution, or
    unreadable, is returned as it is (there is nothing to contradict)."""
    if not exif:
        return exif
    parsed = Image.Exif()
    try:
        parsed.load(exif)
    except Exception:
        return exif
    if EXIF_X_RESOLUTION not in parsed and EXIF_Y_RESOLUTION not in parsed:
        return exif
    parsed[EXIF_X_RESOLUTION] = parsed[EXIF_Y_RESOLUTION] = TiffImagePlugin.IFDRational(dpi)
    parsed[EXIF_RESOLUTION_UNIT] = 2  # inches
    return exif_bytes(parsed)


def _writable(ifd_tag: int | None, tag: int, value) -> bool:
    probe = Image.Exif()
    (probe if ifd_tag is None else probe.get_ifd(ifd_tag))[tag] = value
    try:
        probe.tobytes()
        return True
    except Exception:
        return False


def _picture(
    rgba: np.ndarray, grey: bool, im: Image.Image, exif: Image.Exif, colour_chunks: bytes
) -> Picture:
    if rgba.ndim == 2:
        rgba = rgba[..., None]
    channels = rgba.shape[2]
    rgb = np.repeat(rgba[..., :1], 3, axis=2) if channels in (1, 2) else rgba[..., :3]
    alpha = rgba[..., -1] if channels in (2, 4) else None
    opaque = alpha is not None and alpha.min() == peak(alpha.dtype)
    if opaque:
        alpha = None  # nothing to upscale
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1
    icc = None if im.mode == "CMYK" else im.info.get("icc_profile")  # CMYK was converted to sRGB through it
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    return Picture(
        rgb=np.ascontiguousarray(rgb),
        alpha=alpha,
        grey=grey,
        opaque_alpha=opaque,
        icc=icc or None,
        exif=exif_bytes(exif),
        xmp=reset_xmp_orientation(xmp.encode() if isinstance(xmp, str) else xmp),
        colour_chunks=colour_chunks,
    )


def reset_xmp_orientation(xmp: bytes | None) -> bytes | None:
    """XMP with every tiff:Orientation set to 1 (attribute or element): the pixels are turned already."""
    return header.XMP_ORIENTATION.sub(rb"\g<1>1", xmp) if xmp else xmp


def _png_colour_chunks(data: bytes) -> bytes:
    """The gAMA, cHRM and sRGB chunks of a PNG (length, type, data, CRC: copied as they are), b"" for others.
    They say what the values mean, as an ICC profile does, and follow the same rule: always kept."""
    if not data.startswith(PNG_SIGNATURE):
        return b""
    found, at = [], len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        if kind in PNG_COLOUR_CHUNKS:
            found.append(data[at : at + 12 + length])
        at += 12 + length
    return b"".join(found)


def _depth(data: bytes, im: Image.Image) -> tuple[int, bool | None]:
    """(bits per sample, grey) of a PNG (from IHDR), TIFF (BitsPerSample, PhotometricInterpretation 0/1) or
    HEIC (grey: None); (8, None) for the rest, whose greyness the decoded mode tells."""
    if data.startswith(PNG_SIGNATURE):
        return data[24], data[25] in (0, 4)
    if im.format == "HEIF":
        return im.info.get("bit_depth", 8), None
    if isinstance(im, TiffImagePlugin.TiffImageFile):
        bits = im.tag_v2.get(258, (8,))
        return max(bits) if isinstance(bits, tuple) else bits, im.tag_v2.get(262) in (0, 1)
    return 8, None


def _decode_deep_heif(data: bytes) -> np.ndarray:
    """H x W x 3 (or 4) uint16 of a 10- or 12-bit HEIC's primary image, scaled to 16 bits and turned by its
    irot/imir (libheif): Pillow's plugin gives only 8 bits."""
    return np.asarray(pi_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False, hdr_to_16bit=True))


def _only_orientation(exif: Image.Exif) -> Image.Exif:
    kept = Image.Exif()
    if EXIF_ORIENTATION in exif:
        kept[EXIF_ORIENTATION] = exif[EXIF_ORIENTATION]
    return kept


def _decode_16bit(data: bytes, grey: bool, key) -> np.ndarray:
    """H x W [x C] uint16 in RGB(A) order of a 16-bit PNG or TIFF: Pillow reads them as 8-bit; OpenCV keeps 16
    bits but reads grey + alpha as RGBA and ignores a grey image's transparent key (tRNS), restored here."""
    x = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if x is None or x.dtype != np.uint16:
        raise ValueError("cv2 cannot decode this image at 16 bits")
    if x.ndim == 3:
        x = cv2.cvtColor(x, cv2.COLOR_BGRA2RGBA if x.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if grey and x.ndim == 3:
        x = x[..., [0, 3]] if x.shape[2] == 4 else x[..., 0]
    if x.ndim == 2 and isinstance(key, int):
        x = np.dstack([x, _key_alpha(x, key, np.uint16)])
    return x


def _decode(im: Image.Image) -> None:
    """Decode ``im``'s pixels now: a data stream that does not inflate or decode raises EngineError here
    (read_exif() would swallow it, leaving a black picture to be upscaled)."""
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, zlib.error) as e:
        raise EngineError(f"The image's data is damaged and cannot be decoded ({e}).") from e


def _decode_8bit(im: Image.Image, depth: int) -> tuple[np.ndarray, bool]:
    """(H x W [x C] uint8, grey) of any 8-bit-or-less mode; CMYK goes to sRGB through its ICC profile."""
    key = im.info.get("transparency")
    if im.mode in ("1", "L") and isinstance(key, int):  # a grey key (tRNS), in 1, 2, 4 or 8 bits
        grey = np.asarray(im.convert("L"))
        # Pillow gives a 1-bit image's key as 0 or 255 already, a 2- or 4-bit one's as stored.
        scaled = key if im.mode == "1" else key * (255 // (2**depth - 1))
        return np.dstack([grey, _key_alpha(grey, scaled, np.uint8)]), True
    if im.mode in ("1", "L", "LA"):
        return np.asarray(im.convert("LA" if im.mode == "LA" else "L")), True
    if im.mode == "CMYK":
        return np.asarray(cmyk_to_srgb(im)), False
    has_alpha = im.mode in ("RGBA", "PA", "LA") or "transparency" in im.info
    return np.asarray(im.convert("RGBA" if has_alpha else "RGB")), False


def _key_alpha(grey: np.ndarray, key: int, dtype: DTypeLike) -> np.ndarray:
    return np.where(grey == key, 0, peak(dtype)).astype(dtype)


def cmyk_to_srgb(im: Image.Image) -> Image.Image:
    """CMYK through its embedded profile to sRGB (littleCMS, perceptual intent); Pillow's formula without one."""
    icc = im.info.get("icc_profile")
    if not icc:
        return im.convert("RGB")
    try:
        return ImageCms.profileToProfile(  # type: ignore[return-value] # None only when inPlace=True
            im, ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError):  # a damaged profile: the plain conversion rather than a failure
        return im.convert("RGB")


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an H x W [x C] array, as ``ImageOps.exif_transpose`` does."""
    transforms = {
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: x.swapaxes(0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: x[::-1, ::-1].swapaxes(0, 1),
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(transforms.get(orientation, lambda x: x)(pixels))


# --- alpha and grey --------------------------------------------------------------------------------------


def bleed(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """``rgb`` (H x W x 3) with each fully transparent pixel's colour taken from the nearest visible one
    ("alpha bleeding"), so the arbitrary colour hidden there (often black) cannot seep into visible edges
    through the network as a dark fringe. The same array when there is nothing to fill or nothing to fill
    from. Nearest by Euclidean distance: OpenCV's distance transform labels each pixel with its nearest
    visible one (DIST_LABEL_PIXEL numbers those in raster order)."""
    if alpha is None:
        return rgb
    hidden = alpha == 0
    if not hidden.any() or hidden.all():
        return rgb
    _, labels = cv2.distanceTransformWithLabels(
        hidden.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )
    visible = np.flatnonzero(~hidden)
    filled = rgb.copy()
    filled[hidden] = rgb.reshape(-1, 3)[visible[labels[hidden] - 1]]
    return filled


def upscale_alpha(alpha: np.ndarray | None, scale: int) -> np.ndarray | None:
    """H x W uint8/uint16 -> ``scale`` times larger, bilinear: continuous edges (nearest would show jaggies)
    and weights that are never negative, so alpha cannot ring. Lanczos did: at x4 the interior of a 4x4 opaque
    square dropped to 212 and the clear background beside it rose to 14 (Real-ESRGAN also upscales alpha
    bilinearly unless it runs it through the network)."""
    if alpha is None:
        return None
    h, w = alpha.shape
    return cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)


def _channels(picture: Picture) -> np.ndarray:
    """The output array: grey collapses the (nearly equal) RGB channels to luma, alpha goes last."""
    colour = cv2.cvtColor(picture.rgb, cv2.COLOR_RGB2GRAY) if picture.grey else picture.rgb
    if picture.alpha is not None:
        return np.dstack([colour, picture.alpha])
    if picture.opaque_alpha:
        return np.dstack([colour, np.full(colour.shape[:2], peak(colour.dtype), colour.dtype)])
    return colour


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """H x W (x 3) uint8 or uint16 -> the same at ``size`` (width, height), for shrinking an upscaled result
    to a target (target.py): Pillow's Lanczos (a = 3), whose kernel is widened by the shrink factor
    (antialiased), each plane clipped to its range. Chosen by bench/target_resize.py (docs/benchmarks.md,
    "Resizing to a target size"): the factor lies in (1/2, 1], and on Set5 + Set14 it scored best or within
    0.23 dB of the best at 1/1.2, 1/1.25 and 1/1.9, where OpenCV's INTER_AREA lost 0.83 dB at 1/1.25 and
    OpenCV's Lanczos and cubic, not antialiased, lost most at 1/1.9. 16-bit planes are resized as Pillow's
    I;16. Raises EngineError for a size larger than the picture (this only shrinks)."""
    width, height = size
    if width > pixels.shape[1] or height > pixels.shape[0] or min(width, height) < 1:
        raise EngineError(f"Cannot shrink {pixels.shape[1]}x{pixels.shape[0]} to {width}x{height}.")
    if (width, height) == (pixels.shape[1], pixels.shape[0]):
        return pixels
    if pixels.ndim == 2 or pixels.dtype == np.uint8:
        return np.asarray(Image.fromarray(pixels).resize(size, RESIZE_FILTER))
    planes = [Image.fromarray(np.ascontiguousarray(pixels[..., c])) for c in range(pixels.shape[2])]
    return np.dstack([np.asarray(p.resize(size, RESIZE_FILTER)) for p in planes])


# --- writing ---------------------------------------------------------------------------------------------


def save(picture: Picture, dst: str | Path, fmt: str, quality: int, keep_metadata: bool) -> None:
    if fmt not in OUTPUT_FORMATS:
        raise EngineError(f"Output format {fmt!r} is not supported; {WRITABLE}.")
    if fmt == "png":
        _write_png(picture, Path(dst), keep_metadata)
    elif fmt == "tiff":
        _write_tiff(picture, dst, keep_metadata)
    else:
        _save_with_pillow(picture, dst, fmt, quality, keep_metadata)


def _write_png(picture: Picture, dst: Path, keep_metadata: bool) -> None:
    """Stream a PNG (8- or 16-bit, grey or colour, with or without alpha) band by band into ``dst``.

    Written here rather than by OpenCV or Pillow because the encoder was a fifth of a job's time: rows are
    filtered with "up" in numpy and deflated by ISA-L at level 1, 5x faster than libpng's level 2 with
    its fast filters and a little smaller (Set14 x4: 54.6 MB against 55.3 MB). Memory stays one band.
    """
    x = _channels(picture)
    height, width = x.shape[:2]
    channels = 1 if x.ndim == 2 else x.shape[2]
    depth = 8 * x.itemsize
    header = struct.pack(">IIBBBBB", width, height, depth, PNG_COLOUR_TYPES[channels], 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header)]
    if picture.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(picture.icc)))
    if picture.dpi:  # pHYs: pixels per metre
        per_metre = (round(v / 0.0254) for v in picture.dpi)
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    chunks.append(picture.colour_chunks)
    if keep_metadata and picture.exif:
        chunks.append(_png_chunk(b"eXIf", picture.exif.removeprefix(b"Exif\0\0")))
    if keep_metadata and picture.xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + picture.xmp))
    deflate = isal_zlib.compressobj(PNG_DEFLATE_LEVEL)
    try:
        with open(dst, "wb") as out:
            out.write(PNG_SIGNATURE + b"".join(chunks))
            for band in _up_filtered_bands(x):
                if data := deflate.compress(band):  # ISA-L holds back small inputs
                    out.write(_png_chunk(b"IDAT", data))
            out.write(_png_chunk(b"IDAT", deflate.flush()) + _png_chunk(b"IEND", b""))
    except OSError as e:
        raise EngineError("The result could not be written as PNG.") from e


def _write_tiff(picture: Picture, dst: str | Path, keep_metadata: bool) -> None:
    """8 or 16 bits, grey or RGB, alpha, ICC and density as for PNG, XMP on request (tiff.py). 16-bit grey
    with alpha goes as RGBA: Pillow cannot open a 16-bit grey + alpha TIFF and OpenCV reads it as 8-bit grey,
    so neither this product nor many viewers could read it back (a grey profile cannot describe RGB: dropped)."""
    picture = to_srgb(picture)  # TIFF has no gAMA
    if picture.grey and picture.alpha is not None and picture.rgb.dtype == np.uint16:
        grey_icc = (picture.icc or b"")[16:20] == b"GRAY"
        picture = replace(picture, grey=False, icc=None if grey_icc else picture.icc)
    xmp = picture.xmp if keep_metadata else None
    tiff.write(_channels(picture), dst, picture.icc, picture.dpi, xmp)


def _up_filtered_bands(x: np.ndarray):
    """PNG scanlines, a band of rows at a time: filter type 2 ("up": each byte minus the one above it)."""
    rows = x.reshape(len(x), -1)
    above = np.zeros(rows.shape[1] * x.itemsize, np.uint8)  # the row above the first is zeros
    for top in range(0, len(rows), PNG_BAND_ROWS):
        band = (
            rows[top : top + PNG_BAND_ROWS].astype(f">u{x.itemsize}", copy=False).view(np.uint8)
        )  # PNG is big-endian
        lines = np.empty((len(band), band.shape[1] + 1), np.uint8)
        lines[:, 0] = 2
        np.subtract(band[0], above, out=lines[0, 1:])
        np.subtract(band[1:], band[:-1], out=lines[1:, 1:])  # uint8 wraps modulo 256, as PNG's filters do
        above = band[-1]
        yield lines


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_gamma(colour_chunks: bytes) -> float | None:
    """The gamma of a PNG's gAMA chunk among ``colour_chunks``, or None (none, or an sRGB chunk overrides it)."""
    at = colour_chunks.find(b"gAMA")
    if at < 0 or b"sRGB" in colour_chunks:
        return None
    return struct.unpack(">I", colour_chunks[at + 4 : at + 8])[0] / 100_000 or None


def to_srgb(picture: Picture) -> Picture:
    """A picture (8- or 16-bit) whose PNG gAMA differs from sRGB's (1/2.2) and that has no ICC profile, its
    colour values re-encoded as sRGB, for formats without a gAMA chunk (JPEG, WebP, AVIF, TIFF), which
    viewers take as sRGB: light = value ^ (1 / gamma) (PNG specification, 11.3.3.2), then the sRGB curve
    (IEC 61966-2-1). Otherwise the same picture."""
    gamma = png_gamma(picture.colour_chunks)
    if picture.icc or gamma is None or abs(gamma - 1 / 2.2) < 0.01:
        return picture
    top = peak(picture.rgb.dtype)
    light = (np.arange(top + 1) / top) ** (1 / gamma)
    encoded = np.where(light <= 0.0031308, 12.92 * light, 1.055 * light ** (1 / 2.4) - 0.055)
    lut = np.clip(np.rint(encoded * top), 0, top).astype(picture.rgb.dtype)
    rgb = cv2.LUT(picture.rgb, lut) if top == 255 else lut[picture.rgb]  # cv2.LUT takes 8-bit only
    return replace(picture.with_pixels(rgb, picture.alpha), colour_chunks=b"")


def rgb_profile(picture: Picture) -> Picture:
    """An 8-bit picture for an RGB-only format (WebP): a grey ICC profile cannot describe RGB values
    (colour-managed readers reject the file; iOS failed to decode such WebPs), so the grey values go through
    it to sRGB (littleCMS, perceptual), written without a profile, as sRGB is assumed. Otherwise the same
    picture."""
    if not picture.icc or picture.icc[16:20] != b"GRAY":
        return picture
    try:
        grey = ImageCms.ImageCmsProfile(io.BytesIO(picture.icc))
        rgb = ImageCms.profileToProfile(Image.fromarray(picture.rgb[..., 0]), grey, SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):  # a damaged profile: the values as they are, read as sRGB
        rgb = Image.fromarray(picture.rgb)
    return replace(picture.with_pixels(np.asarray(rgb), picture.alpha), grey=False, icc=None)


def _save_with_pillow(picture: Picture, dst: str | Path, fmt: str, quality: int, keep_metadata: bool) -> None:
    if picture.rgb.dtype == np.uint16:  # JPEG and WebP are 8-bit formats
        alpha = None if picture.alpha is None else np.rint(picture.alpha / 257.0).astype(np.uint8)
        picture = picture.with_pixels(np.rint(picture.rgb / 257.0).astype(np.uint8), alpha)
    picture = to_srgb(picture)
    if fmt in ("webp", "avif"):
        picture = rgb_profile(picture)
    if fmt == "jpeg":
        picture = replace(picture, opaque_alpha=False)
    if fmt == "jpeg" and picture.alpha is not None:  # JPEG has no alpha: flatten onto white
        a = picture.alpha[..., None].astype(np.float32) / 255.0
        flat = np.rint(picture.rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)
        picture = picture.with_pixels(flat, None)
    options: dict[str, Any] = {"quality": quality, "icc_profile": picture.icc, "exif": None, "xmp": None}
    if picture.dpi and fmt == "jpeg":  # JFIF's density (WebP has no field of its own)
        options["dpi"] = tuple(round(v) for v in picture.dpi)
    if fmt == "jpeg":
        options["subsampling"] = 0  # 4:4:4: chroma subsampling would blur the detail just created
    if fmt == "avif":
        options["subsampling"] = "4:4:4"
    if keep_metadata:
        options.update(exif=picture.exif, xmp=picture.xmp)
    if fmt == "jpeg":  # one APP1 segment each: what does not fit is dropped, never a failed job
        options.update({k: None for k, cap in JPEG_SEGMENT_BYTES.items() if len(options[k] or b"") > cap})
    given = {k: v for k, v in options.items() if v is not None}
    Image.fromarray(_channels(picture)).save(dst, fmt.upper(), **given)
