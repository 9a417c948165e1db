"""Compilation: once per process and tile shape, threads and cache from the environment, openvino in one place."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.engine.conftest import TILE
from upscale_worker.engine import Options, runtime, upscale_array

ENGINE = Path(runtime.__file__).parent


def compiled(precision="f32"):
    return runtime.compiled_model(runtime.models_dir(), 2, "clean", precision, TILE, TILE, runtime.threads())


def test_it_compiles_one_fixed_tile_shape_with_the_threads_asked(monkeypatch):
    monkeypatch.setenv("UPSCALE_THREADS", "1")
    model = compiled()
    assert list(model.input(0).shape) == [1, 3, TILE, TILE]
    assert model.get_property("INFERENCE_NUM_THREADS") == 1
    assert model.get_property("ENABLE_CPU_PINNING") is False


def test_it_fills_the_compiled_model_cache(tmp_path, monkeypatch):
    # A fresh process, since the Core (and so its cache folder) is made once per process.
    code = "from upscale_worker.engine import runtime; runtime.infer_function(2, 'clean', 'f32', 128, 128)"  # a tile
    env = {
        "UPSCALE_CACHE_DIR": str(tmp_path / "cache"),
        "UPSCALE_MODELS_DIR": str(runtime.models_dir()),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ENGINE.parents[1])
    assert any((tmp_path / "cache").iterdir())


def test_workers_need_no_torch_nor_nncf():
    code = (
        "import sys, numpy as np; from upscale_worker.engine import upscale_array; "
        "upscale_array(np.zeros((4, 4, 3), np.uint8), 2); "
        "assert not {'torch', 'nncf'} & set(sys.modules), 'training dependency imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ENGINE.parents[1],
        env={"UPSCALE_MODELS_DIR": str(runtime.models_dir()), "PATH": "/usr/bin:/bin"},
    )


def test_only_one_module_imports_openvino():
    importers = [p.name for p in ENGINE.glob("*.py") if "import openvino" in p.read_text()]
    assert importers == ["runtime.py"]


def test_each_image_gets_the_compiled_tile_that_computes_fewest_pixels(monkeypatch):
    monkeypatch.setenv("UPSCALE_TILE", "64,40")
    used = []
    infer_function = runtime.infer_function
    monkeypatch.setattr(
        runtime, "infer_function", lambda *args: used.append(args[3:5]) or infer_function(*args)
    )
    upscale_array(np.zeros((10, 12, 3), np.uint8), 2)  # padded by 8 a side, smaller than any tile: one window
    upscale_array(
        np.zeros((100, 100, 3), np.uint8), 2
    )  # padded to 116: 9 tiles of 64x64 rather than 25 of 40x40
    assert runtime.tile_sizes() == (40, 64) and used == [(26, 28), (64, 64)]


def test_only_the_configured_tiles_go_to_the_disk_cache(tmp_path):
    code = (
        "from upscale_worker.engine import runtime; runtime.infer_function(2, 'clean', 'f32', 30, 50); "
        "import os; assert not os.listdir(runtime.cache_dir()), 'an image-sized window was cached'; "
        "runtime.infer_function(2, 'clean', 'f32', 128, 128); assert os.listdir(runtime.cache_dir())"
    )
    env = {
        "UPSCALE_CACHE_DIR": str(tmp_path / "cache"),
        "UPSCALE_MODELS_DIR": str(runtime.models_dir()),
        "PATH": "/usr/bin:/bin",
    }
    (tmp_path / "cache").mkdir()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ENGINE.parents[1])


def test_without_the_setting_the_tiles_are_128_and_280(monkeypatch):
    monkeypatch.delenv("UPSCALE_TILE")
    assert runtime.tile_sizes() == (128, 280)


def test_the_tile_option_overrides_the_environment():
    upscale_array(np.zeros((50, 50, 3), np.uint8), 2, Options(tile=40, precision="f32"))
    hits = runtime.compiled_window.cache_info().hits
    runtime.compiled_model(
        runtime.models_dir(), 2, "clean", "f32", 40, 40, runtime.threads()
    )  # compiled above: a hit
    assert runtime.compiled_window.cache_info().hits == hits + 1


def test_only_the_last_two_image_sized_windows_stay_compiled():
    """Each compiled shape holds its own activations: many small image sizes must not pile them up."""
    upscale_array(np.zeros((100, 100, 3), np.uint8), 2)  # the 64 tile
    for side in (20, 21, 22):  # each smaller than the tile: a window of its own size
        upscale_array(np.zeros((side, side, 3), np.uint8), 2)
    assert runtime.compiled_window.cache_info().currsize == 2
    assert runtime.compiled_tile.cache_info().currsize >= 1  # the tile stays
    misses = runtime.compiled_window.cache_info().misses
    upscale_array(np.zeros((20, 20, 3), np.uint8), 2)  # evicted: compiled again
    assert runtime.compiled_window.cache_info().misses == misses + 1
