"""Seam-free tiling: tiled output equals one inference on the whole image within 1 grey level."""

import numpy as np
import openvino as ov
import pytest
import torch

from tests.conftest import configure_engine
from training.edsr import from_state_dict
from upscale_worker.engine import Options, api, upscale_array
from upscale_worker.engine.api import BACK_PROJECTION, BORDER, OVERLAP, PAD
from upscale_worker.engine.backprojection import back_project
from upscale_worker.engine.costs import CostTable
from upscale_worker.engine.pixels import from_model, to_model
from upscale_worker.engine.tiling import (
    best_tile,
    best_window,
    computed_pixels,
    fitted_sides,
    padded,
    upscale_tiled,
    windows,
)


def noise(width: int, height: int) -> np.ndarray:
    """Texture everywhere: the hardest case for seams."""
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def nearest(batch: np.ndarray) -> np.ndarray:
    return batch.repeat(2, axis=2).repeat(2, axis=3)


@pytest.mark.parametrize("size", [(1, 1), (7, 300), (333, 517), (40, 40), (41, 39), (65, 104), (105, 104)])
def test_every_pixel_comes_from_the_right_tile(size):
    """With a stand-in 'model' (nearest x2), tiling must be exact at any size, multiple of the tile or not."""
    img = noise(size[1], size[0])
    out = upscale_tiled(img, 2, nearest, tile=64, overlap=OVERLAP)
    assert np.array_equal(out, img.repeat(2, axis=0).repeat(2, axis=1))


@pytest.mark.parametrize("border", ["replicate", "reflect"])
@pytest.mark.parametrize("size", [(1, 1), (7, 300), (333, 517), (49, 48)])
def test_a_padded_border_is_cut_away_exactly(size, border):
    """The padding's output is never kept: with the stand-in, the result is the unpadded image's, at any size."""
    img = noise(size[1], size[0])
    out = upscale_tiled(img, 2, nearest, tile=64, overlap=OVERLAP, pad=PAD, border=border)
    assert np.array_equal(out, img.repeat(2, axis=0).repeat(2, axis=1))


@pytest.mark.parametrize(
    ("size", "tile", "ratio"),
    [
        ((64, 64), 128, 1.0),
        ((512, 512), 280, 1.196),
        ((2000, 1500), 280, 1.254),
        ((300, 100), 128, 1.28),
        ((520, 520), 280, 1.160),
    ],
)
def test_each_image_gets_the_tile_that_computes_fewest_pixels(size, tile, ratio):
    """An image smaller than the tile is one window of its own size; 280 (interior 256) tiles 512 with
    1.20x the pixels, not 1.56x; 520 needs no third window, as the image's borders need no overlap."""
    w, h = size
    assert best_tile(w, h, (280, 128), OVERLAP) == tile
    assert computed_pixels(w, h, tile, OVERLAP) / (w * h) == pytest.approx(ratio, abs=1e-3)


def test_on_a_tie_the_smaller_tile_wins():
    assert best_tile(10, 10, (64, 40), OVERLAP) == 40


@pytest.fixture(scope="module")
def whole_image_model(models_dir):
    """The same IR, compiled for any shape, to run one inference on the whole image (zero padding at its
    border, as in training)."""
    return ov.Core().compile_model(
        models_dir / "edsr_baseline_x2.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )


def untiled(model, img: np.ndarray, pad: int = 0, border: str = "zero", rounds: int = 0) -> np.ndarray:
    """One inference on the whole image, padded by ``pad`` pixels of ``border`` first, back-projected
    ``rounds`` times onto that padded input and cropped after."""
    source = to_model(padded(img, pad, border))
    sr = model(source)[0]
    if rounds:
        sr = back_project(source[0], sr[0], 2, rounds)[None]
    out = from_model(sr, img.dtype)
    return out[2 * pad : out.shape[0] - 2 * pad, 2 * pad : out.shape[1] - 2 * pad]


def worst_difference(model, img: np.ndarray, tile: int, overlap: int) -> int:
    tiled = upscale_tiled(img, 2, lambda b: model(b)[0], tile, overlap)
    return int(np.abs(tiled.astype(int) - untiled(model, img)).max())


@pytest.mark.parametrize(
    ("size", "tile"),
    [((1, 1), 64), ((7, 300), 64), ((333, 517), 128), ((333, 517), None), ((100, 64), 64), ((48, 48), 64)],
)
def test_tiled_equals_whole_image_within_one_grey_level(whole_image_model, monkeypatch, size, tile):
    configure_engine(monkeypatch, tiles=(64, 128))  # tile None: the engine picks one of these per image
    h, w = size
    img = noise(w, h)
    tiled = upscale_array(img, 2, Options(tile=tile))
    whole = untiled(
        whole_image_model, img, PAD, BORDER, BACK_PROJECTION
    )  # padded and back-projected the same way
    assert tiled.shape == whole.shape == (2 * h, 2 * w, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_tiled_with_the_folded_tail_equals_the_unfolded_network_on_the_whole_image(checkpoint):
    """The exported tail is folded (training/export.py): it differs from the trained one within 2 input
    pixels of a window's edge, which the overlap discards and the padded border crops away."""
    model = from_state_dict(torch.load(checkpoint, weights_only=True)).eval()
    img = noise(150, 97)
    tiled = upscale_array(img, 2, Options(tile=64, back_projection=0))  # 3 x 2 windows
    with torch.no_grad():
        whole = model(torch.from_numpy(to_model(padded(img, PAD, BORDER)))).numpy()
    whole = from_model(whole, img.dtype)[2 * PAD : -2 * PAD, 2 * PAD : -2 * PAD]
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_the_overlap_is_needed(whole_image_model):
    """Without enough overlap the zero padding of each tile shows as seams: the measured minimum was 8.
    124 = two 64-pixel windows overlapping by exactly 2 x 2, so the seams do lie 2 pixels from their edges."""
    img = noise(124, 124)
    assert worst_difference(whole_image_model, img, 64, 2) > 1
    assert worst_difference(whole_image_model, img, 64, 8) <= 1


# RLFN (issue 23): its attention works on a 6-pixel grid, so the windows must start on it (the manifest says).


def photo_crop(width: int, height: int) -> np.ndarray:
    """Real content (RLFN's attention on noise reaches much farther than on photos: tests/training)."""
    from PIL import Image

    from training.rlfn import SHARED

    img = Image.open(SHARED / "datasets" / "train" / "Kodak24" / "kodim21.png").convert("RGB")
    return np.ascontiguousarray(np.asarray(img)[100 : 100 + height, 200 : 200 + width])


@pytest.mark.parametrize("size", [(1, 1), (7, 50), (250, 170), (200, 97)])
def test_rlfn_tiled_equals_one_window_within_one_grey_level(with_rlfn, size):
    h, w = size
    img = photo_crop(w, h)
    tiled = upscale_array(img, 2, Options(network="rlfn", tile=64))  # raised to RLFN's 120
    whole = upscale_array(img, 2, Options(network="rlfn", tile=1024))  # one window
    assert tiled.shape == whole.shape == (2 * h, 2 * w, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_rlfn_windows_off_its_grid_would_show_seams(with_rlfn):
    from upscale_worker.engine import runtime

    img = photo_crop(200, 138)  # 138 = 23 x 6: no extension, so grid and no grid cut the same padded image
    whole = upscale_array(img, 2, Options(network="rlfn", tile=1024, back_projection=0))
    infer = runtime.infer_function(2, "clean", "f32", 125, 125, "rlfn")
    off_grid = upscale_tiled(img, 2, infer, 125, OVERLAP, pad=0, border="reflect", grid=1)
    assert np.abs(off_grid.astype(int) - whole).max() > 4


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(300, 60, 8), (1002, 276, 8), (126, 120, 8), (66, 24, 4)]
)
def test_windows_on_a_grid_start_on_it_and_still_overlap_enough(length, tile, overlap):
    spans = windows(length, tile, overlap, grid=6)
    assert all(start % 6 == 0 for start, _, _ in spans)
    assert spans[0][1] == 0 and spans[-1][2] == length and spans[-1][0] + tile == length
    for start, kept_from, kept_to in spans:
        assert kept_from == 0 or kept_from - start >= overlap
        assert kept_to == length or start + tile - kept_to >= overlap
    assert [s[2] for s in spans[:-1]] == [s[1] for s in spans[1:]]  # every pixel kept once


# int8 as shipped (issue 21): windows of the engine's tiles against one window, back-projected and settled.
# Measured over Set5 and the 11 held-out images on the Xeon (bf16 float layers): tile 128 differs by 2 levels on
# at most 0.002% of pixels at x2/x3/x4; tile 64 on 0.018% / 0.061% / 0.167% (0.012% / 0.041% / 0.199% without
# back-projection): bf16 rounds differently per compiled shape, back-projection adds nothing (docs/engine.md).


@pytest.mark.parametrize("scale", [2, 4])
def test_int8_at_the_engines_tiles_equals_one_window_within_one_level_almost_everywhere(shipped, scale):
    img = photo_crop(300, 200)
    tiled = upscale_array(img, scale, Options(precision="int8", tile=128))  # windows of 128 (2 x 3)
    whole = upscale_array(img, scale, Options(precision="int8", tile=1024))  # one window
    assert api.rounds("clean", None) == BACK_PROJECTION > 0  # both back-projected, as a job is
    off = np.abs(tiled.astype(int) - whole).max(axis=2) >= 2
    assert off.mean() < 0.001, f"{100 * off.mean():.3f}% of pixels differ by 2 levels or more"


# Windows that fit the picture (issue 19): any side, not only the configured tiles, chosen per image.

COMMON_SIZES = [
    (640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 960), (1600, 1200), (1920, 1080), (2048, 1536),
    (2560, 1440), (3000, 2000), (3840, 2160), (4000, 3000), (512, 512), (1080, 1080), (1200, 800),
]  # fmt: skip


@pytest.mark.parametrize(
    ("length", "overlap", "grid", "low"), [(616, 8, 1, 64), (1014, 8, 6, 120), (90, 8, 1, 40)]
)
def test_each_fitted_side_cuts_its_axis_into_one_more_window(length, overlap, grid, low):
    sides = fitted_sides(length, overlap, grid, low)
    assert sides[0] == length and all(side % grid == 0 for side in sides)
    for n, side in enumerate(sides, start=1):
        assert len(windows(length, side, overlap, grid)) == n
        if side - grid >= low:  # the smallest such side: one grid step less needs another window
            assert len(windows(length, side - grid, overlap, grid)) > n


def geometric_mean(values):
    return float(np.exp(np.mean(np.log(values))))


def test_fitted_windows_compute_fewer_pixels_on_common_photo_sizes():
    """The pair of tiles (128, 280) computes 1.33x a photo's pixels over these sizes; windows fitted to each
    picture, at most 400 x 400, 1.09x (padded as the engine pads)."""

    def ratio(w, h, area):
        W, H = w + 2 * PAD, h + 2 * PAD
        win_h, win_w = best_window(W, H, (128, 280), OVERLAP, 1, area, None, 128)
        count = len(windows(H, win_h, OVERLAP)) * len(windows(W, win_w, OVERLAP))
        return count * win_h * win_w / (w * h)

    assert geometric_mean([ratio(w, h, 0) for w, h in COMMON_SIZES]) == pytest.approx(1.334, abs=1e-3)
    fitted = [ratio(w, h, 400 * 400) for w, h in COMMON_SIZES]
    assert geometric_mean(fitted) == pytest.approx(1.093, abs=1e-3) and max(fitted) < 1.12


def test_a_fitted_window_respects_the_area_and_the_network_grid():
    win_h, win_w = best_window(1014, 768, (120, 276), OVERLAP, 6, 300 * 300, None, 120)
    assert win_h * win_w <= 300 * 300 and win_h % 6 == 0 and win_w % 6 == 0 and min(win_h, win_w) >= 120


def test_a_cost_table_that_finds_large_windows_slow_gets_smaller_ones():
    """Where the time per pixel grows with the side (as measured on AMX), fewer pixels are not the cheapest."""
    table = CostTable(((128, 128 * 128 * 1.0), (400, 400 * 400 * 3.0)))  # ms: 3x the time per pixel at 400
    by_pixels = best_window(1016, 766, (128, 280), OVERLAP, 1, 400 * 400, None, 128)
    by_cost = best_window(1016, 766, (128, 280), OVERLAP, 1, 400 * 400, table.window_ms, 128)
    assert by_pixels[0] * by_pixels[1] > 300 * 300 and by_cost[0] * by_cost[1] < 200 * 200


@pytest.mark.parametrize("window", [(64, 40), (40, 96), (17, 200)])
def test_every_pixel_comes_from_the_right_non_square_window(window):
    img = noise(333, 217)
    out = upscale_tiled(img, 2, nearest, window, OVERLAP, pad=PAD, border="replicate")
    assert np.array_equal(out, img.repeat(2, axis=0).repeat(2, axis=1))


def test_fitted_windows_equal_one_inference_on_the_whole_image(whole_image_model, monkeypatch):
    configure_engine(monkeypatch, tiles=(64,), window_area=64 * 96)
    img = noise(190, 121)
    tiled = upscale_array(img, 2)
    whole = untiled(whole_image_model, img, PAD, BORDER, BACK_PROJECTION)
    assert np.abs(tiled.astype(int) - whole).max() <= 1
