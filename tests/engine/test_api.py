"""The engine's contract with its callers (Celery task, CLI): files in, files out, progress, cancel, errors."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import configure_engine
from tests.engine.conftest import encode, gradient
from upscale_worker.engine import Cancelled, EngineError, upscale_file


def test_it_upscales_a_path_and_reports_sizes(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(encode(gradient(40, 30)))
    result = upscale_file(src, tmp_path / "out.png", scale=2)
    assert result.input_size == (40, 30) and result.output_size == (80, 60)
    assert Image.open(tmp_path / "out.png").size == (80, 60)


def test_it_reads_a_binary_file_object(tmp_path):
    result = upscale_file(
        io.BytesIO(encode(gradient(20, 10))), str(tmp_path / "out.webp"), scale=2, fmt="webp"
    )
    assert result.output_size == (40, 20)
    assert Image.open(tmp_path / "out.webp").format == "WEBP"


def test_it_reports_progress_in_tiles(tmp_path):
    calls = []
    upscale_file(
        io.BytesIO(encode(gradient(100, 50))),
        tmp_path / "out.png",
        scale=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = calls[0][1]
    assert total > 1 and calls == [(i, total) for i in range(total + 1)]


def test_it_stops_promptly_when_cancelled(tmp_path):
    calls = []
    with pytest.raises(Cancelled):
        upscale_file(
            io.BytesIO(encode(gradient(100, 50))),
            tmp_path / "out.png",
            scale=2,
            progress=lambda done, total: calls.append(done),
            cancelled=lambda: len(calls) >= 2,
        )
    assert calls == [0, 1]  # no tile ran after the cancel was seen
    assert not (tmp_path / "out.png").exists()
    assert issubclass(Cancelled, EngineError)


def test_it_says_clearly_when_no_model_exists_for_the_scale(tmp_path):
    with pytest.raises(EngineError, match=r"x4 is not available yet \(available: x2\)"):
        upscale_file(io.BytesIO(encode(gradient(8, 8))), tmp_path / "out.png", scale=4)


@pytest.mark.parametrize("data", [b"", b"<html>not an image</html>", encode(gradient(8, 8))[:60]])
def test_it_refuses_unreadable_input_with_a_sentence(tmp_path, data):
    with pytest.raises(EngineError, match=r"not an image that can be read|damaged and cannot be decoded"):
        upscale_file(io.BytesIO(data), tmp_path / "out.png", scale=2)


def test_it_refuses_unsupported_formats(tmp_path):
    with pytest.raises(EngineError, match="ICO images are not supported"):
        upscale_file(io.BytesIO(encode(gradient(8, 8), "ICO")), tmp_path / "out.png", scale=2)
    with pytest.raises(EngineError, match="format 'gif' is not supported"):
        upscale_file(io.BytesIO(encode(gradient(8, 8))), tmp_path / "out.gif", scale=2, fmt="gif")


def test_it_detects_a_damaged_model_file(tmp_path, models_dir, monkeypatch):
    damaged = tmp_path / "models"
    damaged.mkdir()
    for f in models_dir.iterdir():
        (damaged / f.name).write_bytes(f.read_bytes())
    (damaged / "edsr_baseline_x2.bin").write_bytes(b"\0" * 16)
    configure_engine(monkeypatch, models_dir=damaged)
    with pytest.raises(EngineError, match="missing or damaged"):
        upscale_file(io.BytesIO(encode(gradient(8, 8))), tmp_path / "out.png", scale=2)


def test_it_compiles_once_per_window_shape(tmp_path):
    from upscale_worker.engine import runtime

    upscale_file(io.BytesIO(encode(gradient(8, 8))), tmp_path / "a.png", scale=2)
    before = runtime.recent_windows.misses
    upscale_file(io.BytesIO(encode(gradient(8, 8))), tmp_path / "b.png", scale=2)
    assert runtime.recent_windows.misses == before
    upscale_file(io.BytesIO(encode(gradient(9, 8))), tmp_path / "c.png", scale=2)  # smaller than a tile
    assert runtime.recent_windows.misses == before + 1


def test_the_output_is_close_to_the_model_on_the_whole_image(tmp_path):
    img = gradient(30, 20)
    upscale_file(io.BytesIO(encode(img)), tmp_path / "out.png", scale=2)
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8


def test_it_shows_the_upscaled_pixels_before_encoding(tmp_path):
    seen = []
    img = gradient(30, 20, channels=4)
    upscale_file(
        io.BytesIO(encode(img)),
        tmp_path / "out.png",
        scale=2,
        on_result=lambda rgb, alpha: seen.append((rgb.copy(), alpha.copy())),
    )
    rgb, alpha = seen[0]
    written = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(rgb, written[..., :3]) and np.array_equal(alpha, written[..., 3])
