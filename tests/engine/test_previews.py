"""The result while it is made (PartialPreview): finished windows drawn from their upscaled interiors, the rest
from the input enlarged and dimmed, at most the preview's size."""

import io

import numpy as np
import pytest
from PIL import Image

from upscale_worker.engine.previews import PartialPreview
from upscale_worker.engine.tiling import window_grid

SCALE = 2


def grid(height=120, width=200, tile=64):
    return window_grid(height, width, SCALE, tile, overlap=4, pad=4)


def box(partial, index):
    """Window ``index``'s interior in preview pixels, shrunk by a pixel on each side (resampling blurs edges)."""
    rows, cols = partial.cut.kept(index)
    fy = partial.height / (partial.cut.height * SCALE)
    fx = partial.width / (partial.cut.width * SCALE)
    return slice(round(rows.start * fy) + 1, round(rows.stop * fy) - 1), slice(
        round(cols.start * fx) + 1, round(cols.stop * fx) - 1
    )


def test_it_draws_finished_windows_from_the_result_and_the_rest_from_the_dimmed_input():
    cut = grid()
    assert cut.total >= 6
    picture = np.zeros((120, 200, 3), np.uint8)  # the input: black
    result = np.full((240, 400, 3), 250, np.uint8)  # what the network made: near white
    partial = PartialPreview(picture, cut, size=300)
    assert (partial.width, partial.height) == (300, 180)  # the result's shape, fitted into 300
    for index in (0, cut.total - 1):
        partial.add(index, result[cut.kept(index)])

    for index in range(cut.total):
        drawn = partial.canvas[box(partial, index)]
        if index in (0, cut.total - 1):
            assert drawn.min() == 250, index
        else:  # black dimmed towards grey: 128 x (1 - DIM)
            assert np.all(np.abs(drawn.astype(int) - round(128 * (1 - PartialPreview.DIM))) <= 1), index
    assert partial.done == {0, cut.total - 1}


def test_it_enlarges_a_small_input_and_keeps_16_bit_levels():
    cut = grid(30, 40, tile=32)
    picture = np.full((30, 40, 3), 65535, np.uint16)
    partial = PartialPreview(picture, cut, size=1024)
    assert (partial.width, partial.height) == (80, 60)  # the result is smaller than the preview: its size
    partial.add(0, np.zeros_like(picture, shape=(*[s.stop - s.start for s in cut.kept(0)], 3)))
    assert partial.canvas.dtype == np.uint8
    assert partial.canvas[box(partial, 0)].max() == 0
    dimmed_white = 255 * PartialPreview.DIM + 128 * (1 - PartialPreview.DIM)
    assert np.all(np.abs(partial.canvas[-1, -1] - dimmed_white) <= 1)  # not computed yet


def test_it_encodes_a_jpeg_of_its_size():
    cut = grid()
    partial = PartialPreview(np.zeros((120, 200, 3), np.uint8), cut, size=100)
    with Image.open(io.BytesIO(partial.encode())) as im:
        assert (im.format, im.size) == ("JPEG", (100, 60))


def test_it_refuses_an_interior_of_the_wrong_shape():
    cut = grid()
    partial = PartialPreview(np.zeros((120, 200, 3), np.uint8), cut, size=100)
    with pytest.raises(ValueError, match="window 1"):
        partial.add(1, np.zeros((5, 5, 3), np.uint8))
    assert partial.done == set()
