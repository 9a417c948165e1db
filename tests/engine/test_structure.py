"""Structural cost bounded before decoding: scans, chunks, frames and sub-blocks (engine/structure.py)."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from upscale_worker.engine import Cancelled, pixels, structure
from upscale_worker.engine.errors import Unreadable

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def encode(im: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


SAVES = [
    {},
    {"optimize": True},
    {"progressive": True},
    {"progressive": True, "optimize": True},
    {"subsampling": 0, "optimize": True},
    {"subsampling": 1, "progressive": True},
]


@pytest.mark.parametrize("mode", ["L", "RGB", "CMYK"])
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (333, 517), (1500, 1000)])
def test_it_accepts_the_leanest_jpegs_libjpeg_writes(mode, size):
    # A flat picture with optimised Huffman tables codes each block in the fewest bits there are.
    for save in SAVES:
        for level in (0, 255):
            structure.check(encode(Image.new(mode, size, (level,) * len(mode)), "JPEG", **save), "jpeg")


def test_it_accepts_every_jpeg_of_the_corpus():
    files = sorted(CORPUS.rglob("*.jpg"))
    assert files
    for path in files:
        structure.check(path.read_bytes(), "jpeg")


def test_it_skips_extraneous_bytes_between_segments_as_libjpeg_does():
    data = encode(Image.new("RGB", (300, 200), (90, 100, 110)), "JPEG")
    at = data.index(b"\xff\xdb")  # before the quantisation tables
    padded = data[:at] + b"\0\0junk" + data[at:]
    assert Image.open(io.BytesIO(padded)).load() is not None  # a warning only
    structure.check(padded, "jpeg")


def cut(data: bytes, keep: int) -> bytes:
    return data[:keep] + b"\xff\xd9"


def test_it_refuses_entropy_data_far_shorter_than_the_blocks_need():
    data = encode(Image.new("RGB", (2000, 1500), (90, 100, 110)), "JPEG", optimize=True)
    structure.check(data, "jpeg")
    with pytest.raises(Unreadable, match="truncated"):
        structure.check(cut(data, len(data) // 3), "jpeg")


def test_it_refuses_a_progressive_jpeg_that_ends_before_its_dc_scan_does():
    data = encode(Image.new("RGB", (2000, 1500), (90, 100, 110)), "JPEG", progressive=True)
    with pytest.raises(Unreadable, match="truncated"):
        structure.check(cut(data, 1000), "jpeg")


def test_it_refuses_a_jpeg_that_ends_before_its_scans_code_every_component():
    data = encode(Image.new("RGB", (64, 64), (90, 100, 110)), "JPEG", progressive=True)
    scans = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    structure.check(cut(data, scans[1]), "jpeg")  # the first scan codes every component's DC: a picture
    with pytest.raises(Unreadable, match="truncated"):
        structure.check(cut(data, scans[0]), "jpeg")


def gif(frames: int) -> bytes:
    images = [Image.new("RGB", (8, 8), (100 * i, 0, 0)) for i in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:])


def test_it_accepts_a_still_gif_with_xmps_magic_trailer():
    # XMP's application extension is raw text, then 257 bytes that end any walk of "sub-blocks" through it.
    data = gif(1)
    trailer = bytes([1, *range(255, -1, -1), 0])
    xmp = b"\x21\xff\x0bXMP DataXMP<x:xmpmeta xmlns:x='adobe:ns:meta/'/>" + trailer
    at = data.index(b",")  # the image descriptor
    data = data[:at] + xmp + data[at:]
    assert Image.open(io.BytesIO(data)).n_frames == 1
    structure.check(data, "gif")


def test_it_refuses_an_animated_gif_at_its_second_frame():
    with pytest.raises(Unreadable, match=r"Animated images are not supported \(this one has 2 frames\)"):
        structure.check(gif(2), "gif")


def test_it_refuses_a_gif_of_countless_tiny_sub_blocks():
    data = bytearray(gif(1))
    comment = b"\x21\xfe" + b"\x01x" * (structure.MAX_GIF_SHORT_BLOCKS + 1) + b"\0"
    with pytest.raises(Unreadable, match="short data blocks"):
        structure.check(bytes(data[:-1] + comment + data[-1:]), "gif")


def test_the_worker_bounds_the_structure_too():
    data = encode(Image.new("RGB", (64, 64)), "JPEG", progressive=True)
    scans = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    bomb = data[:-2] + data[scans[-1] : -2] * 200 + b"\xff\xd9"
    with pytest.raises(Unreadable):
        pixels.load(io.BytesIO(bomb))


def test_the_decode_stops_on_cancel():
    rng = np.random.default_rng(0)
    data = encode(Image.fromarray(rng.integers(0, 256, (600, 600, 3), np.uint8)), "JPEG", quality=95)
    assert len(data) > 4 * 65536  # Pillow reads 64 KB at a time
    asked = []
    with pytest.raises(Cancelled):
        pixels.load(io.BytesIO(data), cancelled=lambda: asked.append(1) or len(asked) > 2)
    assert len(asked) == 3
    assert pixels.load(io.BytesIO(data), cancelled=lambda: False).size == (600, 600)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with(*chunks: bytes) -> bytes:
    data = encode(Image.new("RGB", (8, 8), (10, 20, 30)), "PNG")
    return data[:33] + b"".join(chunks) + data[33:]  # after IHDR


SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
BIG_TEXT = zlib.compress(b"x" * 2_000_000)  # 2 KB that inflate past Pillow's 1 MB text limit
OVERSIZED = {
    "profile": png_chunk(b"iCCP", b"big\0\0" + zlib.compress(SRGB + b"\0" * 1_500_000)),
    "zTXt": png_chunk(b"zTXt", b"Comment\0\0" + BIG_TEXT),
    "iTXt": png_chunk(b"iTXt", b"Comment\0\1\0en\0Kommentar\0" + BIG_TEXT),
}


@pytest.mark.parametrize("kind", sorted(OVERSIZED))
def test_a_png_with_a_chunk_over_pillows_limit_keeps_its_picture(kind):
    data = png_with(png_chunk(b"tEXt", b"Title\0kept"), OVERSIZED[kind])
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
        Image.open(io.BytesIO(data)).load()  # what refused it as damaged
    lenient = structure.without_oversized_chunks(data)
    assert len(lenient) == len(data) - len(OVERSIZED[kind])
    assert Image.open(io.BytesIO(lenient)).info["Title"] == "kept"
    picture = pixels.load(io.BytesIO(data))
    assert picture.size == (8, 8) and picture.rgb[0, 0].tolist() == [10, 20, 30]


def test_a_png_with_an_ordinary_profile_keeps_it():
    data = png_with(png_chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(SRGB)))
    assert structure.without_oversized_chunks(data) is data
    assert pixels.load(io.BytesIO(data)).icc == SRGB
