"""TIFF results (8- or 16-bit, grey or RGB, with or without alpha), written here rather than by a library.

OpenCV's TIFF writer keeps 16 bits but writes no ICC profile or XMP and leaves alpha unlabelled (no
ExtraSamples tag, so readers may take it as a fourth colour); Pillow's writes an ICC profile but has no
16-bit RGB mode. This one writes a baseline little-endian TIFF 6.0 file: strips of about 1 MB each,
horizontal differencing (Predictor 2) and Adobe Deflate (Compression 8) by ISA-L, the same deflate as the
PNG writer. Deflate rather than LZW: every TIFF reader since libtiff 3.x decodes both, Deflate compresses
16-bit samples better (LZW's 12-bit codes match byte strings, and differenced 16-bit samples repeat
little as bytes) and ISA-L deflates at several hundred MB/s, where no fast LZW encoder is at hand.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from isal import isal_zlib

from upscale_worker.engine.errors import EngineError

STRIP_BYTES = 1 << 20  # uncompressed bytes per strip, about: each strip is one deflate stream
DEFLATE_LEVEL = 1  # ISA-L's levels are 0-3; as for PNG, the fastest
MAX_OFFSET = 2**32 - 1  # classic TIFF's offsets are 32 bits
# Field types (TIFF 6.0, section 2): their codes, the struct letter of one integer and the bytes of one value
# (a rational is two LONGs, numerator and denominator).
SHORT, LONG, RATIONAL, UNDEFINED, BYTE = 3, 4, 5, 7, 1
TYPE_FORMATS = {BYTE: "B", SHORT: "H", LONG: "I", RATIONAL: "I", UNDEFINED: "B"}
TYPE_BYTES = {BYTE: 1, SHORT: 2, LONG: 4, RATIONAL: 8, UNDEFINED: 1}
# Tags written, by number (TIFF 6.0; 700 XMP from Adobe's XMP specification part 3; 34675 ICC from ICC.1).
WIDTH, HEIGHT, BITS, COMPRESSION, PHOTOMETRIC = 256, 257, 258, 259, 262
STRIP_OFFSETS, SAMPLES, ROWS_PER_STRIP, STRIP_BYTE_COUNTS = 273, 277, 278, 279
X_RESOLUTION, Y_RESOLUTION, PLANAR, RESOLUTION_UNIT, PREDICTOR, EXTRA_SAMPLES = 282, 283, 284, 296, 317, 338
XMP, ICC = 700, 34675
ADOBE_DEFLATE, HORIZONTAL_DIFFERENCING, INCH, UNASSOCIATED_ALPHA = 8, 2, 2, 2


def write(
    x: np.ndarray,
    dst: str | Path,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    xmp: bytes | None = None,
) -> None:
    """Write ``x`` (H x W, H x W x 2, 3 or 4: grey, grey + alpha, RGB, RGBA; uint8 or uint16) to ``dst`` as
    a TIFF: alpha as unassociated (ExtraSamples 2, as PNG's), ``icc`` as tag 34675, ``dpi`` (x, y pixels
    per inch) as X/YResolution in inches, ``xmp`` as tag 700. Memory: one strip beside ``x``. Raises
    EngineError when the file cannot be written or would pass classic TIFF's 4 GB offsets."""
    if x.ndim == 2:
        x = x[..., None]
    height, width, channels = x.shape
    row_bytes = width * channels * x.itemsize
    rows = max(1, STRIP_BYTES // row_bytes)
    try:
        with open(dst, "wb") as out:
            out.write(b"II*\0" + bytes(4))  # the first directory's offset, filled in at the end
            offsets, counts = [], []
            for top in range(0, height, rows):
                strip = isal_zlib.compress(_differenced(x[top : top + rows]).tobytes(), DEFLATE_LEVEL)
                offsets.append(out.tell())
                counts.append(len(strip))
                out.write(strip + bytes(len(strip) % 2))  # values start on a word boundary
            tags = _tags(width, height, channels, 8 * x.itemsize, rows, offsets, counts, icc, dpi, xmp)
            directory = out.tell()
            out.write(_directory(tags, directory))
            if out.tell() > MAX_OFFSET:
                raise EngineError("The result is too large for a TIFF file (4 GB); choose PNG.")
            out.seek(4)
            out.write(struct.pack("<I", directory))
    except OSError as e:
        raise EngineError("The result could not be written as TIFF.") from e


def _differenced(band: np.ndarray) -> np.ndarray:
    """Predictor 2: each sample minus the same channel's sample to its left, modulo 2^bits (TIFF 6.0,
    section 14), little-endian."""
    out = band.copy()
    np.subtract(band[:, 1:], band[:, :-1], out=out[:, 1:])  # unsigned: wraps as the predictor does
    return out.astype(f"<u{band.itemsize}", copy=False)


def _tags(
    width: int,
    height: int,
    channels: int,
    bits: int,
    rows: int,
    offsets: list[int],
    counts: list[int],
    icc: bytes | None,
    dpi: tuple[float, float] | None,
    xmp: bytes | None,
) -> dict[int, tuple[int, list[int] | bytes]]:
    """{tag: (field type, values)}: integers for numbers (a rational as numerator, denominator), bytes
    for BYTE and UNDEFINED fields."""
    tags: dict[int, tuple[int, list[int] | bytes]] = {
        WIDTH: (LONG, [width]),
        HEIGHT: (LONG, [height]),
        BITS: (SHORT, [bits] * channels),
        COMPRESSION: (SHORT, [ADOBE_DEFLATE]),
        PHOTOMETRIC: (SHORT, [1 if channels in (1, 2) else 2]),  # BlackIsZero grey, or RGB
        STRIP_OFFSETS: (LONG, offsets),
        SAMPLES: (SHORT, [channels]),
        ROWS_PER_STRIP: (LONG, [rows]),
        STRIP_BYTE_COUNTS: (LONG, counts),
        PLANAR: (SHORT, [1]),
        PREDICTOR: (SHORT, [HORIZONTAL_DIFFERENCING]),
    }
    if channels in (2, 4):
        tags[EXTRA_SAMPLES] = (SHORT, [UNASSOCIATED_ALPHA])
    if dpi:  # rationals in hundredths of a pixel per inch
        tags[X_RESOLUTION] = (RATIONAL, [round(dpi[0] * 100), 100])
        tags[Y_RESOLUTION] = (RATIONAL, [round(dpi[1] * 100), 100])
        tags[RESOLUTION_UNIT] = (SHORT, [INCH])
    if xmp:
        tags[XMP] = (BYTE, xmp)
    if icc:
        tags[ICC] = (UNDEFINED, icc)
    return tags


def _directory(tags: dict[int, tuple[int, list[int] | bytes]], at: int) -> bytes:
    """The image file directory written at file offset ``at`` (even): its entries in ascending tag order,
    the next directory's offset (0: none), then the values longer than 4 bytes, each at an even offset."""
    entries_end = at + 2 + 12 * len(tags) + 4
    entries, values = [], b""
    for tag in sorted(tags):
        kind, data = tags[tag]
        raw = data if isinstance(data, bytes) else struct.pack(f"<{len(data)}{TYPE_FORMATS[kind]}", *data)
        count = len(raw) // TYPE_BYTES[kind]
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack("<I", entries_end + len(values))
            values += raw + bytes(len(raw) % 2)
        entries.append(struct.pack("<HHI", tag, kind, count) + field)
    return struct.pack("<H", len(tags)) + b"".join(entries) + bytes(4) + values
