"""How compressed an input file is, read from its header: which EDSR variant should upscale it.

A JPEG's quantisation tables say how much it lost. Encoders other than libjpeg (phones, editors, mozjpeg)
write tables of their own, so the quality is not stored anywhere; we report the IJG (libjpeg) quality whose
scaled standard tables are nearest by (weighted, logarithmic) least squares over the luma and chroma
tables: an "IJG-equivalent quality" that one threshold can compare. A lossy WebP's VP8 quantiser index is mapped back through libwebp's
quality -> quantiser curve to the quality its encoder was given, which libwebp scales to be comparable to
JPEG's. PNG and lossless WebP lost nothing.

Nothing here imports OpenVINO, Django or Celery; only Pillow (lazy open: headers, never pixels) and numpy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image

# Choices a job may ask for, and the model variant each means.
SOURCES = ("auto", "clean", "compressed")
VARIANT_OF_SOURCE = {"clean": "clean", "compressed": "jpeg"}
# Below this IJG-equivalent quality `auto` runs the JPEG-aware model, at or above it the clean one.
# bench/jpeg_threshold.py measures where the clean model catches up with the JPEG-aware one on the held-out
# training images, Q 50-100 in steps of 5 (docs/models.md, "Compressed inputs"). With the shipped x2 twin (iteration
# 2,600), each model followed by its back-projection (api.rounds): JPEG-aware minus clean +1.08 dB at Q50,
# +0.99 at Q75, +0.41 at Q90, +0.01 at Q95, -0.43 at Q100: 100 (95 before the JPEG-aware model got its
# round of back-projection from Q90: -0.31 at Q95 then).
JPEG_QUALITY_THRESHOLD = 100

# ITU-T T.81 Annex K, tables K.1 (luminance) and K.2 (chrominance), in natural (row-major) order: libjpeg's
# std_luminance_quant_tbl and std_chrominance_quant_tbl, the tables its quality setting scales.
IJG_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
)
IJG_CHROMA = np.array(
    [
        17,
        18,
        24,
        47,
        99,
        99,
        99,
        99,
        18,
        21,
        26,
        66,
        99,
        99,
        99,
        99,
        24,
        26,
        56,
        99,
        99,
        99,
        99,
        99,
        47,
        66,
        99,
        99,
        99,
        99,
        99,
        99,
    ]
    + [99] * 32,
    dtype=np.float64,
)


def ijg_scale(quality: int) -> int:
    """libjpeg's jpeg_quality_scaling() (jcparam.c): quality 1..100 -> percentage applied to the tables."""
    quality = min(100, max(1, quality))
    return 5000 // quality if quality < 50 else 200 - 2 * quality


def ijg_tables(quality: int) -> tuple[np.ndarray, np.ndarray]:
    """The (luma, chroma) 64-entry tables libjpeg writes at ``quality`` with force_baseline, as
    jpeg_add_quant_table() (jcparam.c) scales them: (t * scale + 50) // 100, clamped to 1..255."""
    scale = ijg_scale(quality)
    luma, chroma = (np.clip((t * scale + 50) // 100, 1, 255) for t in (IJG_LUMA, IJG_CHROMA))
    return luma, chroma


_QUALITIES = np.arange(1, 101)
_LOG_TABLES = np.log(np.array([ijg_tables(int(q)) for q in _QUALITIES]))  # 100 x 2 x 64
# Weights of the fit. Logarithms, because quality scales the tables by a factor. Per entry 1 / (1 + u + v)
# for DCT frequency (u, v): natural images hold most of their energy, and so of a file's error, at low
# frequencies, which foreign tables (Photoshop's, Pillow's JpegPresets) shape unlike IJG's. Chroma 1/4: its
# errors weigh less in the picture than luma's. Measured on Set5 against the IJG quality of the same mean
# squared error, the flat fit put Pillow's presets up to 19 qualities off, this one at most 7 (web_low).
_U, _V = np.mgrid[0:8, 0:8]
_WEIGHTS = np.array([1.0, 0.25])[:, None] / (1 + _U + _V).ravel()[None, :]  # 2 x 64


def jpeg_quality(quantization: dict[int, list[int]]) -> int:
    """The IJG-equivalent quality (1..100) of a JPEG's quantisation tables (Pillow's ``im.quantization``:
    table id -> 64 steps in natural order): the quality whose libjpeg tables are nearest by weighted least
    squares of the logarithms over table 0 (luma) and table 1 (chroma; a greyscale file has only luma).
    Raises ValueError without tables."""
    if not quantization:
        raise ValueError("the JPEG has no quantisation tables")
    tables = [
        np.log(np.maximum(1, np.asarray(quantization[k], dtype=np.float64))) for k in sorted(quantization)[:2]
    ]
    error = sum((_WEIGHTS[i] * (_LOG_TABLES[:, i] - t) ** 2).sum(axis=1) for i, t in enumerate(tables))
    return int(_QUALITIES[np.argmin(error)])


@dataclass(frozen=True)
class Compression:
    """What a file's header says about its losses: ``lossy`` and, when lossy, an IJG-equivalent quality."""

    format: str  # "jpeg", "webp", "png", ...
    lossy: bool
    quality: int | None = None

    def describe(self) -> str:
        if not self.lossy:
            return f"lossless {self.format.upper()}"
        return f"{self.format.upper()} of quality {self.quality} (IJG-equivalent)"


def inspect(data: bytes | BinaryIO) -> Compression:
    """Read the header of an image file (bytes or a binary file, whose position is restored) and say how it
    was compressed. Raises ValueError for a file Pillow cannot open."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    start = f.tell()
    try:
        with Image.open(f) as im:
            fmt = (im.format or "").lower()
            if fmt == "jpeg":
                return Compression("jpeg", True, jpeg_quality(im.quantization))  # type: ignore[attr-defined]
        if fmt == "webp":
            f.seek(start)
            quantiser = vp8_quantiser(f.read())
            return Compression(
                "webp", quantiser is not None, None if quantiser is None else webp_quality(quantiser)
            )
        return Compression(fmt, False)
    except (OSError, Image.UnidentifiedImageError) as e:
        raise ValueError(f"not a readable image: {e}") from None
    finally:
        f.seek(start)


# --- WebP ------------------------------------------------------------------------------------------------


def webp_quality(quantiser: float) -> int:
    """The libwebp quality (0..100) that gives a VP8 quantiser index (0..127): libwebp's VP8SetSegmentParams
    and QualityToCompression (src/enc/quant_enc.c) inverted: q = 127 (1 - c), c = linear^(1/3), linear =
    2/3 quality/100 below 0.75 and 2 quality/100 - 1 above. libwebp's quality scale is meant to be
    comparable to JPEG's, so it is used as the IJG-equivalent quality."""
    c = 1 - min(127.0, max(0.0, quantiser)) / 127
    linear = c**3
    quality = linear * 1.5 if linear < 0.5 else (linear + 1) / 2
    return round(100 * quality)


class _BoolDecoder:
    """VP8's boolean entropy decoder (RFC 6386, section 7.3), enough to read the frame header's literals."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 2
        self.value = int.from_bytes(data[:2].ljust(2, b"\0"), "big")
        self.range, self.bits = 255, 0

    def bool(self, probability: int = 128) -> int:
        split = 1 + (((self.range - 1) * probability) >> 8)
        if self.value >= split << 8:
            bit, self.range, self.value = 1, self.range - split, self.value - (split << 8)
        else:
            bit, self.range = 0, split
        while self.range < 128:
            self.value, self.range, self.bits = self.value << 1, self.range << 1, self.bits + 1
            if self.bits == 8:
                self.bits = 0
                self.value |= self.data[self.pos] if self.pos < len(self.data) else 0
                self.pos += 1
        return bit

    def literal(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            value = (value << 1) | self.bool()
        return value

    def signed(self, bits: int) -> int:
        magnitude = self.literal(bits)
        return -magnitude if self.bool() else magnitude


def vp8_quantiser(riff: bytes) -> float | None:
    """The luma AC quantiser index (0..127) of a lossy WebP's key frame, or None for a lossless (VP8L) WebP. RFC 6386, sections 9.2-9.6 and 19.2.
    With segments (libwebp writes four, their quantisers spread around the quality's own by its spatial
    noise shaping) the median of theirs. Raises ValueError when the file holds neither."""
    pos = 12
    while pos + 8 <= len(riff):
        fourcc, size = riff[pos : pos + 4], int.from_bytes(riff[pos + 4 : pos + 8], "little")
        if fourcc == b"VP8L":
            return None
        if fourcc == b"VP8 ":
            return _frame_quantiser(riff[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    raise ValueError("a WebP without a VP8 or VP8L image")


def _frame_quantiser(frame: bytes) -> float:
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        raise ValueError("the WebP's VP8 data does not start with a key frame")
    d = _BoolDecoder(frame[10:])
    d.literal(2)  # colour space, clamping type
    segments = None
    if d.literal(1):  # segmentation enabled
        update_map, update_data = d.literal(1), d.literal(1)
        if update_data:
            absolute = d.literal(1)
            segments = [d.signed(7) if d.literal(1) else 0 for _ in range(4)]
            for _ in range(4):  # loop-filter levels per segment
                if d.literal(1):
                    d.signed(6)
        if update_map:
            for _ in range(3):
                if d.literal(1):
                    d.literal(8)
    d.literal(1 + 6 + 3)  # filter type, loop filter level, sharpness
    if d.literal(1) and d.literal(1):  # loop-filter deltas enabled and updated
        for _ in range(8):
            if d.literal(1):
                d.signed(6)
    d.literal(2)  # log2 of the number of DCT partitions
    base = d.literal(7)  # y_ac_qi
    if segments is None:
        return float(base)
    indices = segments if absolute else [base + s for s in segments]
    return float(np.median(np.clip(indices, 0, 127)))


# --- the choice ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    variant: str  # "clean" or "jpeg"
    reason: str  # a sentence for the job record


def choose(
    source: str,
    compression: Compression | None,
    jpeg_available: bool,
    threshold: int = JPEG_QUALITY_THRESHOLD,
) -> Choice:
    """Which variant upscales a file: ``source`` "clean" and "compressed" force one, "auto" runs the
    JPEG-aware model for a lossy input below ``threshold`` and the clean one otherwise. Without a JPEG-aware
    model for the scale the clean one runs and the reason says so. Raises ValueError for an unknown source."""
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; choose one of {', '.join(SOURCES)}.")
    if source != "auto":
        wanted, why = VARIANT_OF_SOURCE[source], f"asked for {source}"
    elif compression is None or not compression.lossy:
        wanted, why = "clean", f"auto: {compression.describe() if compression else 'not a file'}"
    elif compression.quality is not None and compression.quality < threshold:
        wanted, why = "jpeg", f"auto: {compression.describe()}, below {threshold}"
    else:
        wanted, why = "clean", f"auto: {compression.describe()}, at or above {threshold}"
    if wanted == "jpeg" and not jpeg_available:
        return Choice("clean", f"{why}; no JPEG-aware model for this scale, so the clean one ran")
    return Choice(wanted, why)
