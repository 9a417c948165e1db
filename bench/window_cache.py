"""What keeping more window shapes compiled saves a worker that alternates them.

    python -m bench.window_cache [--shapes 6] [--cycles 3]

A worker sees pictures of several sizes, scales and variants in turn; each picture smaller than a tile, or
given a window fitted to it, runs a shape of its own, compiled on first use (runtime.compiled_window). This
runs ``--shapes`` small pictures (x2 and x4, 60 to 110 px, one window each) in turn for ``--cycles`` cycles,
once with the engine keeping the last 2 shapes compiled (the earlier cache) and once with the default
(config.COMPILED_WINDOWS), interleaved cycle by cycle, and prints the time per cycle, the compiles and the
difference, which is the recompile cost the larger cache saves.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import LOADS, markdown_table, publish


def cycle(pictures: list[tuple[np.ndarray, int]], keep: int) -> tuple[float, int]:
    """Seconds and compiles for one pass over ``pictures`` with ``keep`` shapes kept compiled."""
    from upscale_worker.engine import config, runtime, upscale_array

    config.update(compiled_windows=keep)
    misses, start = runtime.recent_windows.misses, time.perf_counter()
    for rgb, scale in pictures:
        upscale_array(rgb, scale)
    return time.perf_counter() - start, runtime.recent_windows.misses - misses


def main(argv: list[str] | None = None) -> str:
    from upscale_worker.engine import config, runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", type=int, default=6)
    p.add_argument("--cycles", type=int, default=3)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    pictures = [
        (rng.integers(0, 256, (60 + 10 * i, 70 + 8 * i, 3), dtype=np.uint8), 2 if i % 2 else 4)
        for i in range(args.shapes)
    ]
    default = config.COMPILED_WINDOWS
    cycle(pictures, default)  # warm-up: models read, every shape compiled once
    results: dict[int, list[tuple[float, int]]] = {2: [], default: []}
    for _ in range(args.cycles):
        for keep in (2, default):
            runtime.recent_windows.clear()
            cycle(pictures, keep)  # fill the cache as a worker's would be
            LOADS.append(os.getloadavg()[0])
            results[keep].append(cycle(pictures, keep))
    rows = []
    for keep, runs in results.items():
        seconds = float(np.median([s for s, _ in runs]))
        rows.append([f"last {keep} shapes kept", f"{seconds:.2f}", f"{runs[0][1]}"])
    saved = float(np.median([s for s, _ in results[2]]) - np.median([s for s, _ in results[default]]))
    compiles = results[2][0][1] - results[default][0][1]
    notes = [
        f"{args.shapes} pictures of 60-110 px (x2 and x4, int8 default, one window each) in turn; median of "
        f"{args.cycles} cycles, interleaved, each after a cycle that fills the cache; {runtime.threads()} threads.",
        f"Saved per cycle: {saved:.2f} s for {compiles} compiles, **{saved / max(compiles, 1):.2f} s per "
        "recompile** avoided.",
    ]
    headers = ["cache", "s per cycle", "compiles per cycle"]
    return publish(
        "window-cache", "Recompiles a larger window cache saves", markdown_table(headers, rows), notes
    )


if __name__ == "__main__":
    main()
