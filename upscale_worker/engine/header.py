"""The upload check's reading of a file, before anything is decoded at full size (no Django here).

read_header() reads the magic bytes, bounds the structure (structure.py: JPEG scans and their lengths, PNG
chunks, GIF frames), then the header (size, frames, EXIF/XMP orientation) and, for PNG, every chunk's CRC
up to IEND (Pillow's verify, nothing decoded). Once the size limits pass, check_data() decodes
a JPEG in draft mode at 1/8 scale: libjpeg still reads all the entropy-coded data, so a truncated file
raises, at about 1/64 of the full decode's pixel cost. No end marker is looked for: MPO files carry a
second picture after the first one's.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

import pi_heif
from PIL import Image

from upscale_worker.engine import limits, structure
from upscale_worker.engine.errors import Unreadable
from upscale_worker.engine.limits import Limits, TooLarge
from upscale_worker.engine.vocabulary import UPLOAD_FORMATS

MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "webp": (b"RIFF",),
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
    "tiff": (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"),  # both byte orders; classic and BigTIFF
}
# ISO base media files (AVIF, HEIF) say what they hold in their first box, "ftyp": a major brand at byte 8,
# then compatible brands up to the box's length.
AVIF_BRANDS = {b"avif", b"avis"}
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}  # mif1: any HEIF
# pi-heif: libheif with only its decoders (no GPL encoder). Depth maps, auxiliary (gain) images and
# thumbnails are not read; libheif applies the irot/imir transforms itself and resets EXIF's orientation.
pi_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
PILLOW_FORMATS = {
    "png": ["PNG"],
    "jpeg": ["JPEG", "MPO"],
    "webp": ["WEBP"],
    "avif": ["AVIF"],
    "tiff": ["TIFF"],
    "heic": ["HEIF"],
    "gif": ["GIF"],
    "bmp": ["BMP"],
}
SITE_FORMATS = UPLOAD_FORMATS
FORMAT_NAMES = {
    **limits.FORMAT_NAMES,
    "heic": "HEIC",
    "tiff": "TIFF",
    "gif": "GIF",
    "bmp": "BMP",
}
MEDIA_TYPES = {fmt: f"image/{fmt}" for fmt in SITE_FORMATS} | {"heif": "image/heif"}  # a picker's accept list
# Formats people send that are not read yet, named in the refusal (JPEG XL: a bare codestream or its box).
REFUSED_BY_NAME = {b"\xff\x0a": "JPEG XL", b"\0\0\0\x0cJXL \r\n\x87\n": "JPEG XL"}
EXIF_ORIENTATION = 0x0112
XMP_ORIENTATION = re.compile(rb'(tiff:Orientation(?:="|>))([0-9])')  # attribute or element
# JPEG frame markers (SOFn) that libjpeg cannot decode, named for the user; SOF0-2 and 9-10 are decoded.
UNSUPPORTED_JPEG = {
    0xC3: "Lossless JPEG (SOF3)",
    0xC5: "Hierarchical JPEG (SOF5)",
    0xC6: "Hierarchical JPEG (SOF6)",
    0xC7: "Hierarchical lossless JPEG (SOF7)",
    0xCB: "Lossless arithmetic-coded JPEG (SOF11)",
    0xCD: "Hierarchical JPEG (SOF13)",
    0xCE: "Hierarchical JPEG (SOF14)",
    0xCF: "Hierarchical lossless JPEG (SOF15)",
}
SOF_MARKERS = set(range(0xC0, 0xD0)) - {
    0xC4,
    0xC8,
    0xCC,
}  # C4 Huffman tables, C8 reserved, CC arithmetic tables


@dataclass(frozen=True)
class Header:
    format: (
        str  # "png", "jpeg" (MPO included: its first picture), "webp", "heic", "avif", "tiff", "gif" or "bmp"
    )
    width: int  # as displayed: EXIF/XMP orientations 5-8 swap the stored width and height
    height: int
    orientation: int = 1  # EXIF orientation, 1 (none) to 8


def names(formats: tuple[str, ...] = SITE_FORMATS) -> str:
    """The formats' names for a sentence: "PNG, JPEG, WebP, AVIF, BMP or GIF"."""
    listed = [FORMAT_NAMES[x] for x in formats]
    return f"{', '.join(listed[:-1])} or {listed[-1]}" if len(listed) > 1 else listed[0]


def sniff(head: bytes) -> str | None:
    """The format the magic bytes say (WebP: RIFF with WEBP at byte 8; AVIF: an "ftyp" box naming an AVIF
    brand within ``head``'s first 64 bytes; HEIC: one naming a HEIF brand), or None."""
    for fmt, magics in MAGIC.items():
        if head.startswith(magics) and (fmt != "webp" or head[8:12] == b"WEBP"):
            return fmt
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[i : i + 4] for i in range(8, min(size, len(head)) - 3, 4)} - {head[12:16]}  # not minor
        if brands & AVIF_BRANDS:
            return "avif"
        if brands & HEIF_BRANDS:
            return "heic"
    return None


def read_header(f: BinaryIO, limits: Limits, formats: tuple[str, ...] = SITE_FORMATS) -> Header:
    """The header of a file of one of ``formats``, PNG chunks verified, nothing decoded; raises Unreadable
    with a sentence for the user, TooLarge when the header announces a pixel bomb (Pillow refuses to open
    it). ``f`` is left at 0. Check the size limits next, then check_data()."""
    f.seek(0)
    head = f.read(64)
    fmt = sniff(head)
    if fmt not in formats:
        f.seek(0)
        known = next((name for magic, name in REFUSED_BY_NAME.items() if head.startswith(magic)), None)
        if known:
            raise Unreadable(
                f"{known} is not supported yet; save it as {names(formats)}.", "unsupported_format"
            )
        raise Unreadable(f"This is not a {names(formats)} image.", "unsupported_format")
    try:
        if fmt == "jpeg":
            check_jpeg_frame(f)
        f.seek(0)
        data = f.read()
        structure.check(data, fmt)  # scans, chunks, frames bounded before Pillow walks them
        return _checked(io.BytesIO(structure.without_oversized_chunks(data)), fmt, head)
    except Image.DecompressionBombError:
        cap = limits.input_megapixels
        raise TooLarge(
            "The image has far more pixels than "
            + (f"the limit of {cap:g} megapixels." if cap else "this decoder opens.")
        ) from None
    finally:
        f.seek(0)


def check_data(f: BinaryIO, header: Header) -> None:
    """For a JPEG (MPO: its first picture), the 1/8-scale draft decode; raises Unreadable ("The file is
    truncated." or damaged). Other formats were checked by read_header. ``f`` is left at 0."""
    if header.format != "jpeg":
        return
    try:
        f.seek(0)
        with Image.open(f, formats=PILLOW_FORMATS["jpeg"]) as im:
            im.draft(im.mode, (1, 1))  # the smallest DCT scaling libjpeg offers: 1/8 a side
            im.load()
    except Exception as e:  # Pillow raises many kinds (SyntaxError, OSError, struct.error...) on bad data
        raise _unreadable(e, "jpeg") from e
    finally:
        f.seek(0)


def _unreadable(e: Exception, fmt: str) -> Unreadable:
    if "truncated" in str(e).lower():
        return Unreadable("The file is truncated.")
    return Unreadable(f"The file is damaged or not a valid {fmt.upper()} image.")


def _checked(f: BinaryIO, fmt: str, head: bytes) -> Header:
    try:
        f.seek(0)
        with Image.open(f, formats=PILLOW_FORMATS[fmt]) as im:
            width, height = im.size
            # MPO: a JPEG and its second view; HEIF: its primary image is the picture, others are a burst
            frames = 1 if im.format in ("MPO", "HEIF") else getattr(im, "n_frames", 1)
            info = dict(im.info)
            if fmt == "png":
                im.verify()  # chunk CRCs up to IEND: catches truncation and flipped bits, decodes nothing
                info.setdefault("exif", _png_late_exif(f))
            orientation = read_orientation(info)
    except Image.DecompressionBombError:
        raise
    except Exception as e:  # Pillow raises many kinds (SyntaxError, OSError, struct.error...) on bad data
        raise _unreadable(e, fmt) from e
    if fmt == "webp" and int.from_bytes(head[4:8], "little") + 8 > _length(f):
        raise Unreadable("The file is truncated.")
    if frames > 1:
        raise structure.animated(frames)
    if width < 1 or height < 1:
        raise Unreadable("The image is empty.")
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Header(fmt, width, height, orientation)


def _length(f: BinaryIO) -> int:
    return getattr(f, "size", None) or f.seek(0, 2)


def read_orientation(info: dict) -> int:
    """The EXIF orientation (1-8) from a Pillow ``info`` (raw EXIF, else XMP's tiff:Orientation, as Pillow's
    getexif does), 1 when absent or unreadable. Reads no pixels."""
    exif = Image.Exif()
    try:
        if info.get("exif"):
            exif.load(info["exif"])
        value = exif.get(EXIF_ORIENTATION)
    except Exception:  # malformed EXIF is common in the wild and never fatal
        value = None
    if value is None:
        xmp = info.get("xmp") or info.get("XML:com.adobe.xmp") or b""
        match = XMP_ORIENTATION.search(xmp.encode() if isinstance(xmp, str) else xmp)
        value = int(match[2]) if match else 1
    return orientation(value)


def orientation(value) -> int:
    """An EXIF orientation tag's value if it is one (1-8), else 1: a malformed tag turns nothing."""
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _png_late_exif(f: BinaryIO) -> bytes | None:
    """The EXIF of an eXIf chunk after the image data, which Pillow reads only when decoding: the chunks are
    walked by their lengths, the image data skipped."""
    f.seek(8)
    while len(chunk := f.read(8)) == 8:
        length, kind = struct.unpack(">I4s", chunk)
        if kind == b"eXIf":
            return b"Exif\0\0" + f.read(length)
        if kind == b"IEND":
            break
        f.seek(length + 4, 1)
    return None


def check_jpeg_frame(f: BinaryIO) -> None:
    """Raise Unreadable naming the variant when the JPEG's frame (SOFn) is one libjpeg cannot decode
    (lossless, hierarchical, or a sample precision other than 8 bits); reads only the marker segments
    up to the frame header."""
    f.seek(2)
    while len(marker := f.read(2)) == 2 and marker[0] == 0xFF:
        kind = marker[1]
        if kind == 0xFF:  # fill byte
            f.seek(-1, 1)
            continue
        if 0xD0 <= kind <= 0xD9 or kind == 0x01:  # markers without a length
            continue
        raw = f.read(3)
        if len(raw) < 3:
            return
        length, precision = struct.unpack(">HB", raw)
        if length < 2:
            raise Unreadable("The file is damaged or not a valid JPEG image.")
        if kind in UNSUPPORTED_JPEG:
            raise Unreadable(
                f"{UNSUPPORTED_JPEG[kind]} is not supported; save it as PNG or as an ordinary JPEG.",
                "unsupported_format",
            )
        if kind in SOF_MARKERS:
            if precision != 8:
                raise Unreadable(
                    f"{precision}-bit JPEG is not supported; save it as PNG or as an ordinary 8-bit JPEG.",
                    "unsupported_format",
                )
            return
        if kind == 0xDA:  # start of scan before any frame: leave it to the decoder
            return
        f.seek(length - 3, 1)
