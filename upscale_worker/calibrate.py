"""Measure this host's window costs: ``python -m upscale_worker.calibrate``.

    python -m upscale_worker.calibrate [--scales 2,3,4] [--networks edsr,rlfn] [--variants clean,jpeg]
                                       [--sides 96,128,...] [--rounds 3] [--out var/window-costs.json]

For each model file the engine runs by default here (its default precision per scale, variant and network), it
compiles square windows of each side as the engine does and times one inference (best of ``--rounds`` after a
warm-up), then writes milliseconds per window to the cost table (engine/costs.py), keyed by this CPU's model,
the model file's sha256, the float type and the inference threads (UPSCALE_THREADS, default every core this
process may use: run it with the workers' setting). The engine then weighs its choice of window by these
costs (tiling.best_window). Run it once per host and model release, never in a worker's start or a request:
it takes a minute or more per model file. Configured from the environment as the CLI is (cli.config_from_env).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from upscale_worker.engine import config, costs
from upscale_worker.engine.errors import EngineError

DEFAULT_SIDES = tuple(range(96, 481, 32))  # around the tiles (128, 280) and the fitted windows (<= 400 x 400)


def window_ms(
    scale: int, variant: str, precision: str, network: str, sides: list[int], rounds: int
) -> dict[int, float]:
    """Best milliseconds of one side x side window (uniform noise 0..255, float32 1x3xHxW) of the model,
    compiled as the engine compiles it, per side: every side compiled and warmed up first, then ``rounds``
    rounds each timing every side once, so that a load which comes and goes on a shared host reaches every
    side alike."""
    from upscale_worker.engine import runtime

    runs = {}
    for side in sides:
        infer = runtime.infer_function(scale, variant, precision, side, side, None, network)
        batch = np.random.default_rng(0).uniform(0, 255, (1, 3, side, side)).astype(np.float32)
        infer(batch)
        runs[side] = (infer, batch)
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(rounds):
        for side, (infer, batch) in runs.items():
            start = time.perf_counter()
            infer(batch)
            best[side] = min(best[side], time.perf_counter() - start)
    return {side: seconds * 1000 for side, seconds in best.items()}


def calibrate(
    scale: int, variant: str, network: str, sides: tuple[int, ...], rounds: int, out: Path
) -> tuple[str, dict[int, float]]:
    """Time every side for the model the engine runs for (scale, variant, network) and save the table.
    Returns its key and the milliseconds per side. Raises EngineError when there is no such model."""
    from upscale_worker.engine import runtime

    precision = runtime.precision(scale, variant, network)
    model = runtime.checked_model(runtime.models_dir(), scale, variant, precision, network)
    inference = runtime.inference_type(precision).get_type_name()
    grid = model.entry.get("tiling", {}).get("window_grid", 1)
    table_key = costs.key(runtime.cpu_name(), model.entry["sha256"]["bin"], inference, runtime.threads())
    loads = [os.getloadavg()[0]]
    previous = config.current()
    config.configure(replace(previous, compiled_windows=max(previous.compiled_windows, len(sides))))
    try:
        ms = window_ms(scale, variant, precision, network, sorted({s - s % grid for s in sides}), rounds)
    finally:
        config.configure(previous)
        runtime.recent_windows.clear()  # their activations: the next model's sides take their place
    loads.append(os.getloadavg()[0])
    for side, t in ms.items():
        print(
            f"  {model.entry['name']} {side}x{side}: {t:.1f} ms, {side * side / t / 1e3:.3f} MP/s", flush=True
        )
    about = {
        "model": model.entry["name"],
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": rounds,
        "load_1min": [round(min(loads), 1), round(max(loads), 1)],
    }
    costs.save(out, table_key, ms, about)
    return table_key, ms


def main(argv: list[str] | None = None) -> int:
    from upscale_worker.cli import config_from_env
    from upscale_worker.engine import models

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--networks", default=",".join(models.NETWORKS))
    p.add_argument("--variants", default=",".join(models.VARIANTS))
    p.add_argument("--sides", default=",".join(map(str, DEFAULT_SIDES)))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--out", type=Path, help="the cost table (default: UPSCALE_WINDOW_COSTS, var/window-costs.json)"
    )
    args = p.parse_args(argv)
    try:
        config.configure(config_from_env(os.environ))
        out = args.out or config.current().window_costs
        sides = tuple(int(s) for s in args.sides.split(",") if s.strip())
        if not sides or min(sides) < 1:
            raise EngineError(f"Sides must be positive whole numbers, not {args.sides!r}.")
        for network in args.networks.split(","):
            for scale in (int(s) for s in args.scales.split(",")):
                for variant in args.variants.split(","):
                    if not models.has_variant(scale, variant, models.models_dir(), network):
                        continue
                    table_key, _ = calibrate(scale, variant, network, sides, args.rounds, out)
                    print(f"{table_key} -> {out}", flush=True)
    except (EngineError, ValueError) as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
