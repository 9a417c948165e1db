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


@dataclass(frozen=True)
class EngineConfig:
    """Where the models are and how they run. Raises EngineError on a value the engine cannot use.

    models_dir: folder with ``manifest.json`` and the IR files. cache_dir: OpenVINO's compiled-model cache.
    precision: "f32", "bf16" or "int8"; None: per scale, the fastest faithful one (runtime.precision).
    threads: OpenVINO inference threads; None: every core this process may use.
    tiles: tile sides in input pixels, each image getting the one that computes the fewest pixels.
    networks: the networks offered (models.NETWORKS' names); empty: every one. default_network: the one a
    request without a choice gets (a network left out is never the default).
    """

    models_dir: Path = REPO_ROOT / "models"
    cache_dir: Path = REPO_ROOT / "var" / "ov-cache"
    precision: str | None = None
    threads: int | None = None
    tiles: tuple[int, ...] = DEFAULT_TILES
    networks: tuple[str, ...] = ()
    default_network: str = "edsr"

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise EngineError(f"Unknown precision {self.precision!r}; use {', '.join(PRECISIONS)}.")
        if self.threads is not None and self.threads < 1:
            raise EngineError(f"Threads must be at least 1, not {self.threads}.")
        if not self.tiles or min(self.tiles) < 1:
            raise EngineError(f"Tile sides must be positive whole numbers, not {self.tiles}.")
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
