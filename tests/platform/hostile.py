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
    "bmp": lambda: image_bytes(16, 16, "BMP"),
    "tiff": lambda: image_bytes(16, 16, "TIFF"),
}
