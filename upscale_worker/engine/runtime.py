"""The only module that imports OpenVINO: compiles each model once per process, lazily.

Settings come from the engine's configuration (config.py: precision, threads, tile sides, models and cache
folders), never from the environment; each tile side is compiled on first use.

The default precision, per scale: int8 where the export measured the int8 twin within 0.05 dB of f32 on
Set5 and on held-out training images, its windows keeping the tiling's promise (models.int8_is_faithful),
else bf16 where the CPU has it (it costs about 0.01 dB and is 6x faster than f32), else f32. Shipped models,
Set5 f32 / bf16 / int8 (dB): x2 37.746 / 37.734 / 37.735, x3 33.834 / 33.830 / 33.831, x4 31.565 / 31.562 /
31.561; held-out f32 / int8: x2 33.900 / 33.905, x3 29.466 / 29.460, x4 27.430 / 27.432; so every scale runs
int8 (1.3-1.8x bf16's speed).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

from upscale_worker.engine.config import DEFAULT_TILES, current
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.models import ModelFile, find_model, int8_is_faithful, models_dir
from upscale_worker.engine.tiling import Infer

__all__ = ["DEFAULT_TILES", "models_dir"]  # read here by tools and tests


def precision(scale: int | None = None, variant: str = "clean", network: str = "edsr") -> str:
    """The configured precision, else the fastest faithful one for the ``scale`` model of ``variant`` and
    ``network`` (see above; each model is judged on its own measurements)."""
    chosen = current().precision
    if chosen:
        return chosen
    if scale is not None and int8_is_faithful(scale, models_dir(), variant, network):
        return "int8"
    return "bf16" if cpu_has_bf16() else "f32"


def tile_sizes() -> tuple[int, ...]:
    return current().tiles


def threads() -> int:
    return current().threads or len(os.sched_getaffinity(0))


def cache_dir() -> Path:
    return current().cache_dir


def core() -> ov.Core:
    return _core(cache_dir())


@cache
def _core(folder: Path) -> ov.Core:
    core = ov.Core()
    core.set_property({props.cache_dir: str(folder)})
    return core


def cpu_name() -> str:
    """The CPU's model name as OpenVINO reports it (the window cost table's key, costs.py)."""
    return str(core().get_property("CPU", props.device.full_name))


def cpu_has_bf16() -> bool:
    return "BF16" in core().get_property("CPU", props.device.capabilities)


def inference_type(precision: str, pinned: str | None = None) -> ov.Type:
    """Always explicit: on a CPU with bf16, OpenVINO would otherwise run an "f32" model in bf16. ``pinned``
    ("f32" or "bf16"): the float type another process chose for the int8 model's float layers (a job shared
    out keeps one), honoured where this CPU has it."""
    if precision == "int8":  # the int8 IR's float convs: bf16 makes it 2x faster for 0.003 dB (Set5 x2)
        bf16 = cpu_has_bf16() if pinned is None else pinned == "bf16" and cpu_has_bf16()
        return ov.Type.bf16 if bf16 else ov.Type.f32
    return {"f32": ov.Type.f32, "bf16": ov.Type.bf16}[precision]


# Every cache below is keyed by (folder, scale, variant, precision, ..., network): a worker holds the clean
# model and its JPEG-aware twin of one scale, of each network, side by side, and must run the one asked for.


@cache
def checked_model(folder: Path, scale: int, variant: str, precision: str, network: str = "edsr") -> ModelFile:
    """The IR checked against the manifest, once per process: cheap enough to call before decoding."""
    model_file = find_model(scale, precision, folder, variant, network)
    if precision == "bf16" and not cpu_has_bf16():
        raise EngineError("bf16 precision is not available on this processor; use f32 or int8.")
    return model_file


@cache
def read_model(folder: Path, scale: int, variant: str, precision: str, network: str = "edsr") -> ov.Model:
    return core().read_model(checked_model(folder, scale, variant, precision, network).xml)


def compiled_model(
    folder: Path,
    scale: int,
    variant: str,
    precision: str,
    height: int,
    width: int,
    threads: int,
    inference: str | None = None,
    network: str = "edsr",
) -> ov.CompiledModel:
    """The model compiled for one fixed input shape. Each compiled shape holds its own activations (about
    300 MB for a 280 tile at x4), so only the configured tile sides (cut down to the network's window grid)
    stay for the life of the process."""
    inference = inference_type(precision, inference).get_type_name()  # one cache key per float type
    grid = (
        checked_model(folder, scale, variant, precision, network)
        .entry.get("tiling", {})
        .get("window_grid", 1)
    )
    if height == width and height in {t - t % grid for t in tile_sizes()}:
        return compiled_tile(folder, scale, variant, precision, height, threads, inference, network)
    return compiled_window(folder, scale, variant, precision, height, width, threads, inference, network)


@cache
def compiled_tile(
    folder: Path,
    scale: int,
    variant: str,
    precision: str,
    side: int,
    threads: int,
    inference: str | None = None,
    network: str = "edsr",
) -> ov.CompiledModel:
    """A configured tile side: compiled once per process, loaded from the disk cache after the first time."""
    return _compile(folder, scale, variant, precision, side, side, threads, cache_dir(), inference, network)


class _Recent:
    """The last ``current().compiled_windows`` compiled window shapes, least recently used dropped first;
    ``hits`` and ``misses`` count lookups (tests and benchmarks read them)."""

    def __init__(self) -> None:
        self.models: OrderedDict[tuple, ov.CompiledModel] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> ov.CompiledModel:
        if key in self.models:
            self.hits += 1
            self.models.move_to_end(key)
            return self.models[key]
        self.misses += 1
        folder, scale, variant, precision, height, width, threads, inference, network = key
        model = _compile(folder, scale, variant, precision, height, width, threads, "", inference, network)
        self.models[key] = model
        while len(self.models) > current().compiled_windows:
            self.models.popitem(last=False)
        return model

    def clear(self) -> None:
        self.models.clear()


recent_windows = _Recent()


def compiled_window(
    folder: Path,
    scale: int,
    variant: str,
    precision: str,
    height: int,
    width: int,
    threads: int,
    inference: str | None = None,
    network: str = "edsr",
) -> ov.CompiledModel:
    """Any other shape (a window fitted to a picture, or a picture smaller than the tile): compiled in 0.2-0.7
    s and kept while it is one of the last ``compiled_windows`` used (config.py), so that a worker alternating
    scales, variants or sizes does not compile again, while many sizes cannot pile up gigabytes of
    activations; the disk cache would grow with every size seen, so they stay out of it."""
    key = (folder, scale, variant, precision, height, width, threads, inference, network)
    return recent_windows.get(key)


def _compile(
    folder: Path,
    scale: int,
    variant: str,
    precision: str,
    height: int,
    width: int,
    threads: int,
    disk_cache: Path | str,
    inference: str | None = None,
    network: str = "edsr",
) -> ov.CompiledModel:
    model = read_model(folder, scale, variant, precision, network).clone()
    model.reshape([1, 3, height, width])
    config = {
        hints.inference_precision: inference_type(precision, inference),
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        props.inference_num_threads: threads,
        hints.enable_cpu_pinning: False,  # several worker processes share the host's cores
        props.cache_dir: str(disk_cache),
    }
    return core().compile_model(model, "CPU", config)


def infer_function(
    scale: int,
    variant: str,
    precision: str,
    height: int,
    width: int,
    inference: str | None = None,
    network: str = "edsr",
) -> Infer:
    """A callable running one height x width window (``inference``: see inference_type) of ``network``; each
    call of this function gets its own infer request."""
    request = compiled_model(
        models_dir(), scale, variant, precision, height, width, threads(), inference, network
    ).create_infer_request()
    return lambda batch: request.infer([np.ascontiguousarray(batch)])[0]
