"""Back-projection: the reduction is MATLAB's bicubic, each round moves the result towards its input, and
only the clean models' results get it."""

import cv2
import numpy as np
import pytest

from upscale_worker.engine import Options, upscale_array
from upscale_worker.engine.backprojection import back_project, reduce
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


def test_clean_results_get_it_and_jpeg_aware_ones_do_not():
    img = (smooth(40, 36).transpose(1, 2, 0)).round().astype(np.uint8)
    lr = img.transpose(2, 0, 1).astype(np.float32)
    clean, clean_raw = (upscale_array(img, 2, Options(source="clean", back_projection=r)) for r in (2, 0))
    jpeg, jpeg_raw = (upscale_array(img, 2, Options(source="compressed", back_projection=r)) for r in (2, 0))
    assert np.array_equal(jpeg, jpeg_raw)
    as_float = lambda x: x.transpose(2, 0, 1).astype(np.float32)  # noqa: E731
    assert reduction_error(lr, as_float(clean), 2) < reduction_error(lr, as_float(clean_raw), 2) / 2
