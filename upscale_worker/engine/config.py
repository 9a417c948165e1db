"""The engine's configuration: one object, handed in by its callers with ``configure()``. The CLI builds it
from its flags and the environment (upscale_worker/cli.py), the workers from Django settings
(webapp/jobs/services/worker.py), tools and tests from their own arguments. The engine itself reads no
environment variable; a process that configures nothing gets the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from upscale_worker.engine.errors import EngineError

REPO_ROOT = Path(__file__).resolve().parents[2]
PRECISIONS = ("f32", "bf16", "int8")
# 128 keeps small images cheap; two 280 windows cover a side of up to 544 (2 x 280 - 2 x 8 overlap), so a
# 512x512 image computes 1.20x its pixels instead of 1.56x with 128 alone. Each compiled tile side holds its
# own activations (about 300 MB for 280 at x4), so a third side would cost more memory than it saves time.
DEFAULT_TILES = (128, 280)
# Windows fitted to the picture (tiling.best_window): at most this many input pixels each, 400 x 400. Measured
# for issue 19: fitted windows compute 1.11x a picture's pixels instead of 1.33x over 15 common sizes, and
# after the folded tail a 400 x 400 x4 int8 window needs about what a 280 one did before (peak RSS 324 MB
# with one compiled, on the AMX Xeon).
WINDOW_AREA = 400 * 400
# Windows of other shapes than the tiles stay compiled while among the last this many used: a compile costs
# 0.2-0.7 s, so a worker alternating scales, variants or picture sizes should not repeat it (docs/engine.md).
COMPILED_WINDOWS = 6


@dataclass(frozen=True)
class EngineConfig:
    """Where the models are and how they run. Raises EngineError on a value the engine cannot use.

    models_dir: folder with ``manifest.json`` and the IR files. cache_dir: OpenVINO's compiled-model cache.
    precision: "f32", "bf16" or "int8"; None: per scale, the fastest faithful one (runtime.precision).
    threads: OpenVINO inference threads; None: every core this process may use.
    tiles: square tile sides in input pixels, compiled once and kept in the disk cache.
    window_area: the largest window fitted to a picture, in input pixels (0: the tiles only); each picture
    gets the window, a tile or fitted, that costs least (tiling.best_window). window_costs: the per-host cost
    table (costs.py; ``python -m upscale_worker.calibrate``), by which that cost is weighed when it holds the
    model's key, else by pixels. compiled_windows: how many other window shapes stay compiled (an LRU).
    networks: the networks offered (models.NETWORKS' names); empty: every one. default_network: the one a
    request without a choice gets (a network left out is never the default).
    """

    models_dir: Path = REPO_ROOT / "models"
    cache_dir: Path = REPO_ROOT / "var" / "ov-cache"
    precision: str | None = None
    threads: int | None = None
    tiles: tuple[int, ...] = DEFAULT_TILES
    window_area: int = WINDOW_AREA
    window_costs: Path = REPO_ROOT / "var" / "window-costs.json"
    compiled_windows: int = COMPILED_WINDOWS
    networks: tuple[str, ...] = ()
    default_network: str = "edsr"

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise EngineError(f"Unknown precision {self.precision!r}; use {', '.join(PRECISIONS)}.")
        if self.threads is not None and self.threads < 1:
            raise EngineError(f"Threads must be at least 1, not {self.threads}.")
        if not self.tiles or min(self.tiles) < 1:
            raise EngineError(f"Tile sides must be positive whole numbers, not {self.tiles}.")
        if self.window_area < 0 or self.compiled_windows < 1:
            raise EngineError(
                f"The window area must be 0 or more and compiled windows at least 1, not "
                f"{self.window_area} and {self.compiled_windows}."
            )
        object.__setattr__(self, "window_costs", Path(self.window_costs))
        object.__setattr__(self, "models_dir", Path(self.models_dir))
        object.__setattr__(self, "cache_dir", Path(self.cache_dir))
        object.__setattr__(self, "tiles", tuple(sorted(self.tiles)))


_current = EngineConfig()


def configure(config: EngineConfig) -> None:
    """Use ``config`` for every later call of the engine in this process (compiled models are kept per
    models folder, precision and threads, so switching back and forth costs no recompilation)."""
    global _current
    _current = config


def current() -> EngineConfig:
    return _current


def update(**changes) -> EngineConfig:
    """Configure the current configuration with ``changes`` (EngineConfig's fields); returns the new one."""
    configure(replace(current(), **changes))
    return current()
