"""The per-host window cost table: milliseconds per window, measured by ``python -m upscale_worker.calibrate``.

On some CPUs the time per pixel depends on the window's side (on the AMX Xeon measured for issue 19, x4 int8:
128 px 0.376 MP/s, 280 px 0.157, 528 px 0.310), so choosing windows by computed pixels alone can pick a slow
shape. The calibration times square windows of several sides for one model file on one host and writes them to
a JSON file (EngineConfig.window_costs, under ``var/``), keyed by what the times depend on: the CPU's model
name, the model file's sha256, the float type of its float layers and the inference threads. The engine reads
it when the key is present and otherwise chooses by pixel counts (tiling.best_window). Nothing here imports
OpenVINO; nothing measures in a worker's start or a request.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VERSION = 1


def key(cpu: str, model_sha: str, inference: str, threads: int) -> str:
    """The table's key: what the times depend on (``model_sha``: the IR's weights file sha256, hex)."""
    return f"{cpu} | {model_sha[:16]} | {inference} | {threads} threads"


@dataclass(frozen=True)
class CostTable:
    """Milliseconds per window by square side (input pixels), for one key."""

    ms: tuple[tuple[int, float], ...]  # (side, ms per side x side window), sides ascending

    @property
    def sides(self) -> tuple[int, ...]:
        return tuple(side for side, _ in self.ms)

    def per_pixel(self, side: float) -> float:
        """Milliseconds per input pixel of a window of ``side`` (square-equivalent): linear between the two
        measured sides around it, the nearest measured one beyond the ends."""
        sides, cost = self.sides, [ms / s / s for s, ms in self.ms]
        if side <= sides[0]:
            return cost[0]
        if side >= sides[-1]:
            return cost[-1]
        i = next(i for i, s in enumerate(sides) if s >= side)
        f = (side - sides[i - 1]) / (sides[i] - sides[i - 1])
        return cost[i - 1] + f * (cost[i] - cost[i - 1])

    def window_ms(self, height: int, width: int) -> float:
        """Estimated milliseconds for one height x width window: its pixels times per_pixel() at the side of
        the square of the same area (non-square windows are not measured; an approximation)."""
        return height * width * self.per_pixel(math.sqrt(height * width))


def lookup(path: Path, table_key: str) -> CostTable | None:
    """The table for ``table_key`` in the file at ``path``, or None when the file or the key is absent or
    the file is unreadable (the engine then falls back to pixel counts)."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _tables(path, mtime).get(table_key)


@cache
def _tables(path: Path, mtime: int) -> dict[str, CostTable]:
    """Every table in the file, read once per modification (``mtime`` keys the cache)."""
    try:
        data = json.loads(path.read_text())
        return {
            k: CostTable(tuple(sorted((int(s), float(ms)) for s, ms in entry["ms"].items())))
            for k, entry in data.get("tables", {}).items()
            if entry.get("ms")
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(path: Path, table_key: str, ms: dict[int, float], about: dict) -> None:
    """Write (or replace) the table for ``table_key`` in the file at ``path``, keeping the others; ``about``
    (when, load, rounds) is stored beside it. The file is replaced atomically."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    tables = data.get("tables", {}) if isinstance(data, dict) else {}
    tables[table_key] = {"ms": {str(s): round(t, 3) for s, t in sorted(ms.items())}, **about}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": VERSION, "tables": tables}, indent=2) + "\n")
    tmp.replace(path)
