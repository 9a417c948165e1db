"""Back-projection: the reduction is MATLAB's bicubic, each round moves the result towards its input; two
rounds after the clean models, one after the JPEG-aware ones for inputs of quality 90 or more."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from upscale_worker.engine import Options, api, upscale_array, upscale_file
from upscale_worker.engine.backprojection import back_project, reduce, settle_clipping
from upscale_worker.engine.imresize import imresize


def smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    """float32 3 x H x W in 20..230: noise blurred, a photo-like spectrum."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    return (cv2.GaussianBlur(noise, (0, 0), 1.5) * 210 + 20).transpose(2, 0, 1).copy()


def reduction_error(lr: np.ndarray, sr: np.ndarray, scale: int) -> float:
    return float(np.mean([np.abs(reduce(np.clip(p, 0, 255), scale) - t).mean() for p, t in zip(sr, lr)]))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_reduction_is_matlabs_bicubic_imresize(scale):
    plane = np.random.default_rng(scale).random((13 * scale, 7 * scale)).astype(np.float32) * 255
    expected = imresize(plane.astype(np.float64), 1 / scale, as_uint8=False)
    assert np.abs(reduce(plane, scale) - expected).max() < 1e-3


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_each_round_moves_the_result_towards_its_input(scale):
    lr = smooth(24, 20)
    sr = np.stack([cv2.resize(p, (20 * scale, 24 * scale), interpolation=cv2.INTER_LINEAR) for p in lr]) + 6
    errors = [reduction_error(lr, back_project(lr, sr, scale, rounds), scale) for rounds in (0, 1, 2)]
    assert errors[0] > 5 and errors[1] < errors[0] / 2 and errors[2] < errors[1]


def test_a_result_that_already_shrinks_to_its_input_is_left_alone():
    lr = np.full((3, 5, 7), 100, np.float32)
    assert np.abs(back_project(lr, np.full((3, 10, 14), 100, np.float32), 2, 2) - 100).max() < 1e-3


def test_clean_results_get_two_rounds():
    img = (smooth(40, 36).transpose(1, 2, 0)).round().astype(np.uint8)
    lr = img.transpose(2, 0, 1).astype(np.float32)
    clean, clean_raw = (upscale_array(img, 2, Options(source="clean", back_projection=r)) for r in (None, 0))
    assert np.array_equal(clean, upscale_array(img, 2, Options(source="clean", back_projection=2)))
    as_float = lambda x: x.transpose(2, 0, 1).astype(np.float32)  # noqa: E731
    assert reduction_error(lr, as_float(clean), 2) < reduction_error(lr, as_float(clean_raw), 2) / 2


@pytest.mark.parametrize(("quality", "expected"), [(None, 0), (50, 0), (89, 0), (90, 1), (95, 1)])
def test_jpeg_aware_results_get_one_round_from_quality_90(quality, expected):
    assert api.rounds("jpeg", quality) == expected
    img = (smooth(40, 36).transpose(1, 2, 0)).round().astype(np.uint8)
    got = upscale_array(img, 2, Options(source="compressed", input_quality=quality))
    assert np.array_equal(got, upscale_array(img, 2, Options(source="compressed", back_projection=expected)))


def test_a_files_quality_decides_the_rounds(tmp_path):
    """A JPEG's quantisation tables give the quality: one round at 95, none at 60 (the JPEG-aware model both
    times, forced)."""
    img = Image.fromarray((smooth(40, 36).transpose(1, 2, 0)).round().astype(np.uint8))
    for quality, expected in ((95, 1), (60, 0)):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        out = tmp_path / f"q{quality}.png"
        upscale_file(io.BytesIO(buf.getvalue()), out, 2, options=Options(source="compressed"))
        decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        forced = upscale_array(decoded, 2, Options(source="compressed", back_projection=expected))
        assert np.array_equal(np.asarray(Image.open(out)), forced), quality


def test_settling_gives_back_the_mean_that_clipping_takes():
    """A one-pixel checkerboard of 255 and 128 enlarged with its contrast overshooting both ways: clipping
    cuts the top (293 -> 255) but not the bottom (89), so the mean falls 19 levels; each round of settling
    gives back about half of what is left (half the pixels lie clipped)."""
    y, x = np.mgrid[0:16, 0:16]
    lr = np.where((x + y) % 2 == 0, 255, 128).astype(np.float32)
    sr = 191.5 + (cv2.resize(lr, (32, 32), interpolation=cv2.INTER_NEAREST) - 191.5) * 1.6
    gaps = []
    for rounds in (0, 1, 2, 6):
        settled = sr.copy()
        settle_clipping(lr, settled, 2, rounds)
        gaps.append(abs(np.clip(settled, 0, 255).mean() - lr.mean()))
    assert gaps[0] > 19 and gaps[1] < gaps[0] * 0.6 and gaps[2] < gaps[0] * 0.3 and gaps[3] < 1, gaps


def test_settling_leaves_a_result_within_range_alone():
    lr = smooth(12, 10)[0]
    sr = cv2.resize(lr, (20, 24), interpolation=cv2.INTER_CUBIC).clip(0, 255)
    settled = sr.copy()
    settle_clipping(lr, settled, 2, rounds=2)
    assert np.array_equal(settled, sr)
