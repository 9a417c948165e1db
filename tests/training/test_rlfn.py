"""RLFN written from the paper: the authors' published weights load strictly, and the engine's grid variant
gives a window on the 6-pixel grid the same output as the whole image (the paper's resize does not)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training import rlfn, train  # noqa: E402 (after the skip: torch is a training package)


def published(scale: int) -> dict:
    return torch.load(rlfn.PUBLISHED / f"rlfn_x{scale}.pth", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("scale", [2, 4])
def test_it_loads_each_published_state_dict_strictly(scale):
    state = published(scale)
    model = rlfn.from_state_dict(state)
    assert model.scale == scale
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in state.values())


def test_it_refuses_a_state_dict_with_a_missing_tensor():
    state = published(2)
    del state["block_6.esa.conv4.bias"]
    with pytest.raises(RuntimeError, match=r"block_6\.esa\.conv4\.bias"):
        rlfn.from_state_dict(state)


def test_it_keeps_the_0_255_range_and_the_window_size():
    model = rlfn.from_state_dict(published(2)).eval()
    grey = torch.full((1, 3, 20, 24), 128.0)
    with torch.inference_mode():
        out = model(grey)
    assert out.shape == (1, 3, 40, 48)
    assert (out - 128).abs().max() < 3  # a flat grey stays that grey, not 128/255 nor 128*255


def window_difference(grid: bool, origin: int, side: int = 120) -> float:
    """Largest difference (0..255) between a window's output and the whole image's over the same pixels,
    away from the window's edges, for the published x2 weights."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 192, 192).mul(255).round()
    image = torch.nn.functional.avg_pool2d(image, 3, 1, 1)  # some structure for the attention to see
    model = rlfn.from_state_dict(published(2), grid=grid).eval()
    with torch.inference_mode():
        whole = model(image)
        window = model(image[:, :, origin : origin + side, origin : origin + side])
    # Input pixels from the window's edge that its zero padding still reaches on this noise (it crosses
    # each block's attention cells): 0.9 levels at 24, 0.18 at 32, 0.08 at 40 (grid, origin 12).
    margin = 36
    inner = slice(2 * margin, 2 * (side - margin))
    outer = slice(2 * (origin + margin), 2 * (origin + side - margin))
    return float((window[:, :, inner, inner] - whole[:, :, outer, outer]).abs().max())


def test_the_grid_variant_gives_a_window_on_the_grid_the_whole_images_output():
    assert window_difference(grid=True, origin=12) < 0.5


def test_a_window_off_the_grid_differs_from_the_whole_image():
    assert window_difference(grid=True, origin=13) > 1


def test_the_papers_resize_makes_a_window_differ_from_the_whole_image():
    assert window_difference(grid=False, origin=12) > 1


def test_it_trains_and_resumes_the_grid_variant(tmp_path, images_folder):
    args = [
        *("--arch", "rlfn", "--data", str(images_folder), "--scale", "2", "--run", str(tmp_path / "run")),
        *("--patch", "16", "--batch", "2", "--val-every", "3", "--val-crop", "32", "--val-holdout", "6"),
        *("--threads", "1", "--iterations", "3"),
    ]
    meta = train.main(args)
    assert meta["iteration"] == 3 and meta["variant"] == "rlfn-grid"
    assert rlfn.from_state_dict(torch.load(tmp_path / "run" / "best.pt", weights_only=True)).scale == 2
    args[args.index("--iterations") + 1] = "5"
    assert train.main(args)["iteration"] == 5


@pytest.fixture
def images_folder(tmp_path: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def test_it_starts_x3_from_the_x2_body_and_leaves_the_upsampler_its_own():
    x3 = rlfn.RLFN(3)
    fresh_upsampler = x3.upsampler[0].weight.clone()
    copied = x3.load_body_from(published(2))
    state = x3.state_dict()
    assert copied == len(state) - 2  # all but the upsampler's weight and bias
    assert torch.equal(state["block_3.esa.conv2.weight"], published(2)["block_3.esa.conv2.weight"])
    assert torch.equal(x3.upsampler[0].weight, fresh_upsampler)


def test_it_fits_the_upsampler_to_the_least_squares_optimum():
    torch.manual_seed(0)
    model = rlfn.RLFN(3, grid=True)
    model.load_body_from(published(2))
    model.double()  # float64 throughout: a step off the optimum must show above the rounding
    hr = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 72, 72, dtype=torch.float64).mul(255), 5, 1, 2)
    lr = torch.nn.functional.avg_pool2d(hr, 3)  # a degradation the fit can learn to undo in part
    mse = lambda: float((model(lr) - hr).pow(2).mean())  # noqa: E731
    with torch.no_grad():
        before = mse()
        rms = rlfn.fit_upsampler(model, lr, hr, ridge=0)
        fitted = mse()
        assert fitted < before / 10 and abs(fitted**0.5 - rms) < 1e-3 * rms
        for name in ("weight", "bias"):  # any step away from the fit is worse
            param = getattr(model.upsampler[0], name)
            step = torch.randn_like(param) * 1e-2
            param += step
            assert mse() > fitted
            param -= step


def test_the_shipped_int8_twin_keeps_the_searched_layers_in_float():
    import openvino as ov

    from training import export
    from upscale_worker.engine.config import REPO_ROOT

    int8 = export.int8_convs(ov.Core().read_model(REPO_ROOT / "models" / "rlfn_x2_int8.xml"))
    searched = set(export.RLFN_ACCURACY_CONTROL[2])
    assert "block_2.c1_r" in int8 and "block_6.c3_r" in int8  # the body's convs run int8
    assert not int8 & (searched | {"conv_1", "upsampler.0"})
    assert not [name for name in int8 if ".esa." in name]
