"""Structural cost bounded before decoding: scans, chunks, frames and sub-blocks (engine/structure.py)."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
    with pytest.raises(Unreadable, match="Animated images are not supported \(this one has 2 frames\)"):
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
