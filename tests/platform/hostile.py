"""Hostile files, made small: they must be refused from their header, before any decoding."""

import io
import struct
import zlib

from tests.conftest import image_bytes


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width=20000, height=20000):
    """A few-KB PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 200000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def flat_jpeg(width, height, **save):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(buf, "JPEG", **save)
    return buf.getvalue()


def jpeg_scans(data):
    """(start, end) of each start-of-scan segment with its entropy-coded data, in a JPEG from Pillow."""
    scans, at = [], 2
    while data[at + 1] != 0xD9:
        end = at + 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
        if data[at + 1] == 0xDA:
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
            scans.append((at, end))
        at = end
    return scans


def scan_bomb(width=1000, height=1000, repeat=3000, scan=-1):
    """A progressive JPEG whose scan number ``scan`` (the last: luma; 2: a chroma one, a sixth of the blocks;
    a few bytes each, one end-of-band run) is repeated ``repeat`` times, the scans after it left out: libjpeg
    decodes every repetition over every block of its component."""
    data = flat_jpeg(width, height, progressive=True)
    start, end = jpeg_scans(data)[scan]
    return data[:end] + data[start:end] * repeat + b"\xff\xd9"


def cut_jpeg(width=4000, height=4000, keep=640):
    """A JPEG cut after ``keep`` bytes, its end marker put back: libjpeg only warns and decodes grey."""
    return flat_jpeg(width, height)[:keep] + b"\xff\xd9"


def png_chunk_bomb(chunks=2_000_000):
    """A 4x4 PNG with ``chunks`` empty ancillary chunks before its image data (24 MB for two million)."""
    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4 * 13)
    empty = chunk(b"blOb", b"")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + empty * chunks
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


def animated(fmt, frames=1000):
    from PIL import Image

    images = [Image.new("RGB", (4, 4), (i % 256, 0, 0)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=True, append_images=images[1:], duration=10, loop=0)
    return buf.getvalue()


def zip_file():
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    return buf.getvalue()


HOSTILE = {
    "bomb": png_bomb,
    "animated.gif": lambda: animated("GIF"),
    "animated.webp": lambda: animated("WEBP"),
    "animated.png": lambda: animated("PNG", 50),
    "html": lambda: b"<!doctype html><html><script>alert(1)</script></html>",
    "zip": zip_file,
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>',
    "pdf": lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "truncated": lambda: image_bytes(64, 64)[:40],
    "empty": lambda: b"",
    "ico": lambda: image_bytes(16, 16, "ICO"),
    "scan_bomb.jpg": scan_bomb,
    "cut.jpg": cut_jpeg,
    "chunk_bomb.png": png_chunk_bomb,
}
