"""Each format's structural cost, bounded from its bytes before any decoder sees them (no Django here).

A decoder's time grows with the file's structure as well as its pixels: libjpeg decodes every progressive
scan over every block (one scan repeated thousands of times took 24 s of a core for a 404 KB file), Pillow
walks PNG chunks and GIF sub-blocks in Python (two million empty PNG chunks: 41 s). check() walks the
structure with bounded work in C-speed steps (regex searches, struct reads) and refuses what is hostile
or cut short, each refusal an Unreadable with a sentence for the user:

- JPEG: at most MAX_JPEG_SCANS scans (libjpeg-turbo's advice for untrusted files is about 100; ordinary
  progressive files have 10, mozjpeg's up to about 20); every Huffman-coded scan whose blocks cannot all
  be coded needs at least 1 bit per block (DC) or 2 (sequential: a DC code and an end-of-block code), so
  entropy-coded data under half of that is a file cut short with its end marker put back; every frame
  component must be coded by some scan (a file that ends before its last scan does).
- PNG: at most MAX_PNG_CHUNKS chunks (libpng writes 8 KB image data chunks: a 50 MB PNG has about 6,400).
- GIF: frames counted (Pillow's count walks every sub-block in Python), at most MAX_GIF_SHORT_BLOCKS
  sub-blocks shorter than the 255 bytes that every encoder writes (XMP's "magic trailer" is 256 of them).
- TIFF: one page (its first directory links to no other).
WebP (libwebp's demuxer, in C), AVIF (libavif's own limits) and BMP (pixels only) need no walk beyond the
size limits.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from PIL import PngImagePlugin

from upscale_worker.engine.errors import Unreadable

MAX_JPEG_SCANS = 100
# Blocks decoded over all scans, in whole pictures' worth: libjpeg's progressive script passes over each
# block 4-6 times, mozjpeg's about 8; a 16 MP picture's 20 passes cost about 0.8 s on the 2-core EPYC.
MAX_JPEG_PASSES = 20
MAX_PNG_CHUNKS = 50_000
MAX_GIF_SHORT_BLOCKS = 4_096
# Fewest bits a Huffman-coded block can take, by scan kind; the data is refused under half of it.
MIN_BITS_SEQUENTIAL = 2
MIN_BITS_DC = 1
# Frame markers libjpeg decodes: Huffman sequential (C0, C1) and progressive (C2) have a minimum per block;
# the arithmetic-coded ones (C9, CA) can code a flat picture in almost no bits, so they get none.
PROGRESSIVE = {0xC2, 0xCA}
FRAMES = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # ends entropy-coded data (RSTn and stuffing don't)
FF = re.compile(rb"\xff")
TRUNCATED = "The file is truncated."


def damaged(fmt: str) -> Unreadable:
    return Unreadable(f"The file is damaged or not a valid {fmt.upper()} image.")


def check(data: bytes, fmt: str, first_frame: bool = False) -> None:
    """Raise Unreadable when ``data`` (a whole file of ``fmt``: "jpeg", "png", "gif", ...) is hostile or cut
    short in its structure, or animated (a GIF's second frame) unless only its ``first_frame`` will be
    decoded; costs one pass over the bytes at most, and nothing for other formats."""
    if fmt == "gif":
        check_gif(memoryview(data), first_frame)
    elif fmt == "tiff":
        check_tiff(memoryview(data))
    elif fmt in ("jpeg", "png"):
        (check_jpeg if fmt == "jpeg" else check_png)(memoryview(data))


# --- JPEG ------------------------------------------------------------------------------------------------


@dataclass
class Frame:
    marker: int
    width: int
    height: int
    components: dict[int, tuple[int, int]]  # component id -> (horizontal, vertical) sampling factors

    def blocks(self, ids: list[int]) -> int:
        """8x8 blocks a scan of the components ``ids`` codes (one: its own grid; several: whole MCUs)."""
        hmax = max(h for h, _ in self.components.values())
        vmax = max(v for _, v in self.components.values())
        if len(ids) == 1:
            h, v = self.components.get(ids[0], (1, 1))
            return _ceil(_ceil(self.width * h, hmax), 8) * _ceil(_ceil(self.height * v, vmax), 8)
        mcus = _ceil(self.width, 8 * hmax) * _ceil(self.height, 8 * vmax)
        return mcus * sum(h * v for c, (h, v) in self.components.items() if c in ids)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def check_jpeg(data: memoryview) -> None:
    """The first picture's marker segments up to its end marker (EOI, or the data's end: MPO files carry a
    second picture after the first one's EOI), its scans counted and measured. See the module's doc."""
    frame, scans, coded, blocks, at = None, 0, set(), 0, 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:  # extraneous bytes: libjpeg warns and skips to the next marker, and so do we
            at = _next_ff(data, at)
            if at < 0:
                break
            continue
        kind = data[at + 1]
        if kind == 0xFF:  # fill byte
            at += 1
            continue
        if kind == 0xD9:
            break
        if 0xD0 <= kind <= 0xD8 or kind == 0x01:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        segment = data[at + 4 : at + 2 + length]
        if length < 2 or len(segment) < length - 2:
            raise Unreadable(TRUNCATED) if length >= 2 else damaged("jpeg")
        at += 2 + length
        if kind in FRAMES:
            frame = _frame(kind, segment)
        elif kind == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise Unreadable(
                    f"The JPEG has more than {MAX_JPEG_SCANS} scans; save it again as an ordinary JPEG."
                )
            end = _entropy_end(data, at)
            if frame is not None:
                coded |= _check_scan(frame, segment, end - at)
                blocks += frame.blocks(_scan_components(segment))
                if blocks > MAX_JPEG_PASSES * frame.blocks(list(frame.components)):
                    raise Unreadable(
                        f"The JPEG's scans decode the picture more than {MAX_JPEG_PASSES} times over; "
                        "save it again as an ordinary JPEG."
                    )
            at = end
    if frame is not None and frame.height and not set(frame.components) <= coded:
        raise Unreadable(TRUNCATED)


def _frame(kind: int, segment: memoryview) -> Frame:
    if len(segment) < 6:
        raise damaged("jpeg")
    height, width, count = struct.unpack_from(">HHB", segment, 1)
    components = {}
    for i in range(count):
        if 6 + 3 * i + 2 > len(segment):
            raise damaged("jpeg")
        ident, sampling = segment[6 + 3 * i], segment[7 + 3 * i]
        components[ident] = (max(1, sampling >> 4), max(1, sampling & 15))
    if not components:
        raise damaged("jpeg")
    return Frame(kind, width, height, components)


def _next_ff(data: memoryview, at: int) -> int:
    found = FF.search(data, at)
    return found.start() if found else -1


def _entropy_end(data: memoryview, at: int) -> int:
    """Where the entropy-coded data from ``at`` ends: the next marker other than RSTn, or the data's end."""
    found = JPEG_MARKER.search(data, at)
    return found.start() if found else len(data)


def _scan_components(segment: memoryview) -> list[int]:
    """The component ids of a start-of-scan segment."""
    if len(segment) < 1 or len(segment) < 1 + 2 * segment[0] + 3:
        raise damaged("jpeg")
    return [segment[1 + 2 * i] for i in range(segment[0])]


def _check_scan(frame: Frame, segment: memoryview, size: int) -> set[int]:
    """Refuse a Huffman-coded scan whose ``size`` bytes are far fewer than its blocks need (a file cut
    short with its end marker put back); returns the components whose DC (or all) coefficients it codes."""
    ids = _scan_components(segment)
    first, approximation = segment[1 + 2 * segment[0]], segment[3 + 2 * segment[0]]
    progressive = frame.marker in PROGRESSIVE
    if progressive and first > 0:
        return set()  # an AC scan: one end-of-band run may code thousands of blocks, so no minimum
    least = {0xC0: MIN_BITS_SEQUENTIAL, 0xC1: MIN_BITS_SEQUENTIAL, 0xC2: MIN_BITS_DC}.get(frame.marker, 0)
    if frame.height and 8 * size * 2 < least * frame.blocks(ids):
        raise Unreadable(TRUNCATED)
    return set(ids) if approximation >> 4 == 0 else set()  # a refinement (Ah > 0) codes no new component


# --- PNG and GIF -----------------------------------------------------------------------------------------


def check_png(data: memoryview) -> None:
    """Count the chunks up to IEND by their lengths (a cut-off file is left to the CRC check)."""
    at, chunks = 8, 0
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise Unreadable(f"The PNG has more than {MAX_PNG_CHUNKS:,} chunks; save it again.")
        if kind == b"IEND":
            return
        at += 12 + length


COMPRESSED_CHUNKS = {b"zTXt": 1, b"iTXt": 2, b"iCCP": 1}  # bytes after the keyword's NUL: flag, method
ZLIB_MAX_RATIO = 1032  # deflate's best: one 258-byte match in under 2 bits


def without_oversized_chunks(data: bytes) -> bytes:
    """A PNG without the compressed text and ICC profile chunks that inflate past Pillow's limit
    (PngImagePlugin.MAX_TEXT_CHUNK, 1 MB), which would make it refuse the whole file as damaged: the picture
    is kept, the chunk dropped. Inflating is bounded: only payloads large enough to pass the limit are
    tried, each up to the limit, 64 of them at most (then the rest are dropped untried). Other files, and
    PNGs with nothing to drop, come back as they are."""
    if not data.startswith(b"\x89PNG"):
        return data
    limit, budget = PngImagePlugin.MAX_TEXT_CHUNK, 64
    drop, at = [], 8
    while at + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind in (b"IDAT", b"IEND"):
            break
        if kind in COMPRESSED_CHUNKS and length * ZLIB_MAX_RATIO > limit:
            payload = data[at + 8 : at + 8 + length]
            start = payload.find(b"\0") + 1 + COMPRESSED_CHUNKS[kind]
            if kind == b"iTXt":  # keyword, flag, method, language, translated keyword, then the text
                if payload[start - 2 : start - 1] != b"\1":  # not compressed
                    at += 12 + length
                    continue
                start = payload.find(b"\0", payload.find(b"\0", start) + 1) + 1
            budget -= 1
            if budget < 0 or len(_inflated(payload[start:], limit + 1)) > limit:
                drop.append((at, at + 12 + length))
        at += 12 + length
    if not drop:
        return data
    kept, last = [], 0
    for start, end in drop:
        kept.append(data[last:start])
        last = end
    return b"".join([*kept, data[last:]])


def _inflated(payload: bytes, most: int) -> bytes:
    try:
        return zlib.decompressobj().decompress(payload, most)
    except zlib.error:
        return b""  # damaged: left to Pillow, which says so


def check_gif(data: memoryview, first_frame: bool = False) -> None:
    """Walk the blocks to the trailer (Unreadable: animated, its frames counted) or, for ``first_frame``,
    to the second frame; sub-blocks by their lengths."""
    if len(data) < 13:
        raise Unreadable(TRUNCATED)
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    frames, short = 0, 0
    while at < len(data) and data[at] != 0x3B:
        if data[at] == 0x21:  # extension: label, then sub-blocks
            at += 2
        elif data[at] == 0x2C:  # image: descriptor, local colour table, LZW code size, then sub-blocks
            frames += 1
            if frames > 1 and first_frame:
                return
            if at + 10 > len(data):
                raise Unreadable(TRUNCATED)
            flags = data[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
        else:
            raise damaged("gif")
        while at < len(data) and (size := data[at]):
            short += size < 255
            if short > MAX_GIF_SHORT_BLOCKS:
                raise Unreadable("The GIF is damaged (too many short data blocks); save it again.")
            at += 1 + size
        at += 1
    if frames > 1:
        raise animated(frames)


def check_tiff(data: memoryview) -> None:
    """Refuse a TIFF with a second page (image file directory), from the first one's link to the next; the
    rest (entries, strips, tiles) is parsed in C or bounded by the pixel limits."""
    big = data[2:4] in (b"+\0", b"\0+")
    order = "<" if data[:2] == b"II" else ">"
    count, entry = ("Q", 20) if big else ("H", 12)
    try:
        (first,) = struct.unpack_from(order + ("Q" if big else "I"), data, 8 if big else 4)
        (entries,) = struct.unpack_from(order + count, data, first)
        at = first + struct.calcsize(count) + entries * entry
        (following,) = struct.unpack_from(order + ("Q" if big else "I"), data, at)
    except struct.error:
        raise Unreadable(TRUNCATED) from None
    if following:
        raise Unreadable(
            "Multi-page TIFFs are not supported; save the page you want as a TIFF of its own.",
            "unsupported_format",
        )


def animated(frames: int) -> Unreadable:
    return Unreadable(
        f"Animated images are not supported (this one has {frames} frames).", "unsupported_format"
    )
