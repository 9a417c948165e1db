"""Odd but valid (or precisely broken) image files, made small and by hand, for the fidelity classes of issue 11."""

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from tests.conftest import image_bytes
from tests.platform.hostile import chunk


def png(pixels: np.ndarray, colour_type: int, extra: bytes = b"") -> bytes:
    """A PNG written by hand (8 or 16 bits, any colour type), ``extra`` chunks before the image data."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).astype(f">u{pixels.itemsize}").view(np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", w, h, 8 * pixels.itemsize, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def tiff_ifd(entries) -> bytes:
    out = b"MM\0*\0\0\0\x08" + struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        out += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\0")
    return out + b"\0\0\0\0"


MALFORMED_EXIF = b"Exif\0\0" + tiff_ifd(
    [
        (0x011A, 2, 3, b"72\0"),
        (0x011B, 2, 3, b"72\0"),  # resolution as text
        (0x0128, 3, 1, struct.pack(">H", 2)),
    ]
)


def mpo(first=(200, 30, 30), second=(30, 30, 200), size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, first).save(
        buf, "MPO", save_all=True, append_images=[Image.new("RGB", size, second)]
    )
    return buf.getvalue()


def cmyk_profile() -> bytes:
    """A small but real CMYK ICC profile (v2 'prtr', Lab PCS, A2B0 as a lut8 with a 2-point grid) whose colours
    differ from Pillow's plain CMYK -> RGB formula (warmer, with ink that is not a perfect black)."""
    corners = []
    for c, m, y, k in np.ndindex(2, 2, 2, 2):  # the first input channel varies slowest, as ICC orders grids
        rgb = np.array(
            [(1 - c) * (1 - 0.85 * k), (1 - 0.9 * m) * (1 - 0.85 * k), (1 - 0.8 * y) * (1 - 0.85 * k)]
        )
        lab = cv2.cvtColor((rgb * [1.0, 0.95, 0.85]).astype(np.float32)[None, None], cv2.COLOR_RGB2Lab)[0, 0]
        corners.append([lab[0] * 255 / 100, lab[1] + 128, lab[2] + 128])
    identity = bytes(range(256))
    lut = (
        b"mft1\0\0\0\0"
        + bytes([4, 3, 2, 0])
        + b"".join(struct.pack(">i", v) for v in (65536, 0, 0, 0, 65536, 0, 0, 0, 65536))
        + identity * 4
        + np.clip(np.rint(corners), 0, 255).astype(np.uint8).tobytes()
        + identity * 3
    )
    return icc_profile(b"prtrCMYKLab ", [(b"A2B0", lut)])


def grey_profile(gamma: float = 1.0) -> bytes:
    """A grey ICC profile (v2 'mntr', XYZ PCS) whose tone curve is ``gamma``: 1.0 is linear light, so its
    values differ much from sRGB's."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256))
    return icc_profile(b"mntrGRAYXYZ ", [(b"kTRC", curve)])


def icc_profile(kind: bytes, tags: list[tuple[bytes, bytes]]) -> bytes:
    """An ICC v2 profile: ``kind`` is class, colour space and PCS (12 bytes); a description and a D50 white
    point are added to ``tags``."""
    desc = b"desc\0\0\0\0" + struct.pack(">I", 5) + b"test\0" + b"\0" * 12 + b"\0" * 67
    wtpt = b"XYZ \0\0\0\0" + struct.pack(">iii", 63190, 65536, 54061)
    tags = [*tags, (b"desc", desc), (b"wtpt", wtpt)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    head = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + kind
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + struct.pack(">iii", 63190, 65536, 54061)
        + b"\0" * 48
    )
    return head + struct.pack(">I", len(tags)) + table + body


def sof_patched(marker: int | None = None, precision: int | None = None) -> bytes:
    data = bytearray(image_bytes(16, 8, "JPEG"))
    at = data.index(b"\xff\xc0")
    if marker is not None:
        data[at + 1] = marker
    if precision is not None:
        data[at + 4] = precision
    return bytes(data)
