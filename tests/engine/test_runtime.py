"""Compilation: once per process and tile shape, threads and cache from the engine's configuration, openvino
in one place."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import configure_engine
from tests.engine.conftest import TILE
from upscale_worker.engine import Options, runtime, upscale_array
from upscale_worker.engine.config import EngineConfig

ENGINE = Path(runtime.__file__).parent
PATH_ONLY = {"PATH": "/usr/bin:/bin"}  # no UPSCALE_* variable: a child configures its engine itself


def compiled(precision="f32"):
    return runtime.compiled_model(runtime.models_dir(), 2, "clean", precision, TILE, TILE, runtime.threads())


def test_it_compiles_one_fixed_tile_shape_with_the_threads_asked(monkeypatch):
    configure_engine(monkeypatch, threads=1)
    model = compiled()
    assert list(model.input(0).shape) == [1, 3, TILE, TILE]
    assert model.get_property("INFERENCE_NUM_THREADS") == 1
    assert model.get_property("ENABLE_CPU_PINNING") is False


def test_it_fills_the_compiled_model_cache(tmp_path, monkeypatch):
    # A fresh process, since the Core (and so its cache folder) is made once per process.
    code = (
        "from upscale_worker.engine import config, runtime; "
        f"config.update(cache_dir={str(tmp_path / 'cache')!r}, models_dir={str(runtime.models_dir())!r}); "
        "runtime.infer_function(2, 'clean', 'f32', 128, 128)"  # a tile
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=PATH_ONLY, cwd=ENGINE.parents[1])
    assert any((tmp_path / "cache").iterdir())


def test_workers_need_no_torch_nor_nncf():
    code = (
        "import sys, numpy as np; from upscale_worker.engine import config, upscale_array; "
        f"config.update(models_dir={str(runtime.models_dir())!r}); "
        "upscale_array(np.zeros((4, 4, 3), np.uint8), 2); "
        "assert not {'torch', 'nncf'} & set(sys.modules), 'training dependency imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        cwd=ENGINE.parents[1],
        env=PATH_ONLY,
    )


def test_only_one_module_imports_openvino():
    importers = [p.name for p in ENGINE.glob("*.py") if "import openvino" in p.read_text()]
    assert importers == ["runtime.py"]


def test_each_image_gets_the_compiled_tile_that_computes_fewest_pixels(monkeypatch):
    configure_engine(monkeypatch, tiles=(64, 40), window_area=0)  # the tiles only
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
        "from upscale_worker.engine import config, runtime; "
        f"config.update(cache_dir={str(tmp_path / 'cache')!r}, models_dir={str(runtime.models_dir())!r}); "
        "runtime.infer_function(2, 'clean', 'f32', 30, 50); "
        "import os; assert not os.listdir(runtime.cache_dir()), 'an image-sized window was cached'; "
        "runtime.infer_function(2, 'clean', 'f32', 128, 128); assert os.listdir(runtime.cache_dir())"
    )
    (tmp_path / "cache").mkdir()
    subprocess.run([sys.executable, "-c", code], check=True, env=PATH_ONLY, cwd=ENGINE.parents[1])


def test_without_the_setting_the_tiles_are_128_and_280(monkeypatch):
    configure_engine(monkeypatch, tiles=EngineConfig().tiles)
    assert runtime.tile_sizes() == (128, 280)


def test_the_tile_option_overrides_the_environment():
    upscale_array(np.zeros((50, 50, 3), np.uint8), 2, Options(tile=40, precision="f32"))
    hits = runtime.recent_windows.hits
    runtime.compiled_model(
        runtime.models_dir(), 2, "clean", "f32", 40, 40, runtime.threads()
    )  # compiled above: a hit
    assert runtime.recent_windows.hits == hits + 1


def test_only_the_last_few_image_sized_windows_stay_compiled(monkeypatch):
    """Each compiled shape holds its own activations: many small image sizes must not pile them up."""
    configure_engine(monkeypatch, compiled_windows=2)
    upscale_array(np.zeros((100, 100, 3), np.uint8), 2, Options(tile=TILE))  # the 64 tile
    for side in (20, 21, 22):  # each smaller than the tile: a window of its own size
        upscale_array(np.zeros((side, side, 3), np.uint8), 2)
    assert len(runtime.recent_windows.models) == 2
    assert runtime.compiled_tile.cache_info().currsize >= 1  # the tile stays
    misses = runtime.recent_windows.misses
    upscale_array(np.zeros((20, 20, 3), np.uint8), 2)  # evicted: compiled again
    assert runtime.recent_windows.misses == misses + 1


def test_a_worker_alternating_window_shapes_compiles_each_once(monkeypatch):
    """Six shapes in turn (variants, precisions and sizes, as a worker sees them) stay compiled by default."""
    configure_engine(monkeypatch, compiled_windows=EngineConfig().compiled_windows)
    f32, int8, jpeg = Options(precision="f32"), Options(precision="int8"), Options(source="compressed")
    shapes = [(20, 20, f32), (21, 30, f32), (20, 20, int8), (20, 20, jpeg), (23, 19, int8), (25, 25, jpeg)]
    for h, w, options in shapes:
        upscale_array(np.zeros((h, w, 3), np.uint8), 2, options)
    misses = runtime.recent_windows.misses
    for h, w, options in shapes * 2:
        upscale_array(np.zeros((h, w, 3), np.uint8), 2, options)
    assert runtime.recent_windows.misses == misses
