"""How compressed an input is, from its header: IJG-equivalent JPEG quality, lossy WebP, lossless files."""

import io
from functools import cache, lru_cache

import numpy as np
import pytest
from PIL import Image, JpegPresets

from tests.engine.conftest import SET5, encode, gradient
from upscale_worker.engine import compression
from upscale_worker.engine.compression import Compression, choose, ijg_tables, inspect

needs_set5 = pytest.mark.skipif(not SET5.is_dir(), reason="needs the shared Set5 benchmark")


@lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    """Set5: natural content, as uploads are."""
    return tuple(np.asarray(Image.open(p).convert("RGB")) for p in sorted((SET5 / "HR").glob("*.png")))


def decoded(img: np.ndarray, **save) -> tuple[np.ndarray, bytes]:
    data = encode(img, "JPEG", **save)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), data


def mse(images, **save) -> float:
    return float(np.mean([np.mean((decoded(img, **save)[0].astype(float) - img) ** 2) for img in images]))


@cache
def ijg_errors(subsampling: int) -> dict[int, float]:
    return {q: mse(photos(), quality=q, subsampling=subsampling) for q in range(20, 101)}


def same_error_quality(error: float, subsampling: int) -> int:
    """The IJG quality (libjpeg through Pillow) whose Set5 files have the nearest mean squared error: the
    equivalent quality judged by what was lost, independently of how the estimate reads the tables."""
    errors = ijg_errors(subsampling)
    return min(errors, key=lambda q: abs(np.log(errors[q] / error)))


@needs_set5
@pytest.mark.parametrize("quality", range(30, 96, 5))
@pytest.mark.parametrize(
    ("subsampling", "progressive"), [("4:2:0", False), ("4:4:4", False), ("4:2:0", True)]
)
def test_it_reads_the_quality_pillow_saved_a_jpeg_at(quality, subsampling, progressive):
    img = photos()[0]
    data = encode(img, "JPEG", quality=quality, subsampling=subsampling, progressive=progressive)
    assert abs(inspect(data).quality - quality) <= 5
    assert inspect(data) == Compression("jpeg", True, quality)  # libjpeg's own tables: exactly


def test_a_greyscale_jpeg_has_one_table_and_still_gets_its_quality():
    data = encode(gradient(64, 64, channels=1), "JPEG", quality=60)
    assert inspect(data).quality == 60


@needs_set5
@pytest.mark.parametrize("preset", sorted(JpegPresets.presets))
def test_pillows_presets_get_the_quality_of_the_same_error(preset):
    images = photos()
    error = mse(images, quality=preset)
    expected = same_error_quality(error, JpegPresets.presets[preset]["subsampling"])
    estimate = inspect(decoded(images[0], quality=preset)[1]).quality
    # web_low's tables rise far faster than IJG's at the lowest frequencies: 7 qualities off (43 for 36).
    assert abs(estimate - expected) <= (7 if preset == "web_low" else 5)


@needs_set5
@pytest.mark.parametrize("quality", [40, 60, 80])
def test_custom_tables_get_the_quality_of_the_same_error(quality):
    """An encoder's own tables: IJG's at ``quality``, each step moved by up to 20% (seeded)."""
    rng = np.random.default_rng(quality)
    tables = [
        list(np.clip(np.round(t * rng.uniform(0.8, 1.2, 64)), 1, 255).astype(int))
        for t in ijg_tables(quality)
    ]
    images = photos()
    estimate = inspect(decoded(images[0], qtables=tables)[1]).quality
    assert abs(estimate - same_error_quality(mse(images, qtables=tables), 2)) <= 5


def test_ijg_tables_follow_libjpegs_scaling():
    luma, chroma = ijg_tables(50)
    assert luma[:3].tolist() == [16, 11, 10] and chroma[0] == 17  # the standard tables themselves
    assert ijg_tables(100)[0].max() == 1 and ijg_tables(1)[0].min() == 255  # clamped to 1..255
    assert ijg_tables(75)[0][0] == (16 * 50 + 50) // 100 and ijg_tables(25)[0][0] == (16 * 200 + 50) // 100


@needs_set5
@pytest.mark.parametrize("quality", [30, 60, 90])
def test_a_lossy_webp_gets_a_comparable_quality_from_its_quantiser(quality):
    found = inspect(encode(photos()[2], "WEBP", quality=quality))
    assert found.format == "webp" and found.lossy and abs(found.quality - quality) <= 10


def test_lossless_files_are_lossless():
    img = gradient(40, 30)
    assert inspect(encode(img, "PNG")) == Compression("png", False)
    assert inspect(encode(img, "WEBP", lossless=True)) == Compression("webp", False)


def test_it_refuses_what_is_not_an_image():
    with pytest.raises(ValueError, match="not a readable image"):
        inspect(b"<html>")


def test_it_restores_the_position_of_a_file_it_reads():
    f = io.BytesIO(encode(gradient(16, 16), "JPEG", quality=50))
    inspect(f)
    assert f.tell() == 0


def jpeg(quality):
    return Compression("jpeg", True, quality)


@pytest.mark.parametrize(
    ("found", "variant"),
    [
        (Compression("png", False), "clean"),
        (Compression("webp", False), "clean"),
        (jpeg(95), "clean"),
        (jpeg(98), "clean"),
        (jpeg(60), "jpeg"),
        (Compression("webp", True, 50), "jpeg"),
    ],
)
def test_auto_picks_the_variant_from_the_compression(found, variant, monkeypatch):
    monkeypatch.setattr(compression, "JPEG_QUALITY_THRESHOLD", 90)
    assert choose("auto", found, jpeg_available=True, threshold=90).variant == variant


def test_the_source_option_overrides_auto():
    assert choose("clean", jpeg(40), True).variant == "clean"
    assert choose("compressed", Compression("png", False), True).variant == "jpeg"


def test_without_a_jpeg_aware_model_the_clean_one_runs_and_the_reason_says_so():
    choice = choose("auto", jpeg(40), jpeg_available=False)
    assert choice.variant == "clean" and "no JPEG-aware model" in choice.reason
    assert choose("compressed", jpeg(40), jpeg_available=False).variant == "clean"


def test_an_unknown_source_is_refused():
    with pytest.raises(ValueError, match="Unknown source 'sharp'"):
        choose("sharp", None, True)
