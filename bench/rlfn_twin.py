"""RLFN's int8 twins against RLFN f32 on this CPU: one engine window and one photo, interleaved.

    python -m bench.rlfn_twin --scale 4 --twin before=/tmp/models-main --twin after=models [--rounds 5]

Each ``--twin NAME=FOLDER`` is a models folder holding ``rlfn_x{scale}.xml`` and ``rlfn_x{scale}_int8.xml``
(e.g. a checkout of main for the post-training twin, this tree for the quantisation-aware one); the first
folder's f32 model is the reference. Two measurements, each case warmed up once, then ``--rounds`` rounds
through the cases in turn (the first case rotating), best seconds kept:

- ``window``: one 276x276 LR window (the engine's RLFN tile) through OpenVINO directly, 1 x 3 x 276 x 276
  float32 in 0..255, the model compiled for that shape with the engine's threads;
- ``photo``: a 1280x720 photo-like picture (bench.photo_latency) at the scale through the engine
  (upscale_array, tiles and all) with that folder as its models folder.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.network_precision import picture


def window_runner(xml: Path, side: int, threads: int):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(xml)
    model.reshape([1, 3, side, side])
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads})
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, side, side)).astype(np.float32)
    return lambda: compiled([x])


def photo_runner(folder: Path, scale: int, precision: str, rgb: np.ndarray):
    from upscale_worker.engine import Options, config, upscale_array

    def run():
        config.update(models_dir=folder)
        upscale_array(rgb, scale, Options(precision=precision, network="rlfn"))

    return run


def best_of(runners: dict[str, object], rounds: int) -> dict[str, float]:
    names = list(runners)
    for name in names:
        runners[name]()
    best: dict[str, float] = {}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            started = time.perf_counter()
            runners[name]()
            took = time.perf_counter() - started
            best[name] = min(best.get(name, took), took)
            print(f"round {r + 1}: {name} {took * 1000:.0f} ms", flush=True)
    return best


def main(argv: list[str] | None = None) -> dict:
    from upscale_worker.engine import runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--twin", action="append", required=True, help="NAME=FOLDER of models")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--photo-rounds", type=int, default=3)
    p.add_argument("--side", type=int, default=276, help="the window's side")
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the photo")
    args = p.parse_args(argv)
    twins = dict(t.split("=", 1) for t in args.twin)
    folders = {name: Path(folder) for name, folder in twins.items()}
    reference = next(iter(folders.values()))
    threads = runtime.threads()
    s = args.scale
    windows = {"f32": window_runner(reference / f"rlfn_x{s}.xml", args.side, threads)}
    for name, folder in folders.items():
        windows[f"int8 {name}"] = window_runner(folder / f"rlfn_x{s}_int8.xml", args.side, threads)
    window = best_of(windows, args.rounds)
    width, height = (int(v) for v in args.size.split("x"))
    rgb = picture(width, height)
    photos = {"f32": photo_runner(reference, s, "f32", rgb)}
    for name, folder in folders.items():
        photos[f"int8 {name}"] = photo_runner(folder, s, "int8", rgb)
    photo = best_of(photos, args.photo_rounds)
    print(f"x{s}, {threads} threads, {runtime.cpu_name()}")
    print(f"| model | {args.side}x{args.side} window | {width}x{height} photo |")
    print("|---|---:|---:|")
    for name in window:
        print(
            f"| {name} | {window[name] * 1000:,.0f} ms ({window[name] / window['f32']:.2f}x) | "
            f"{photo[name]:.2f} s ({photo[name] / photo['f32']:.2f}x) |"
        )
    return {"window": window, "photo": photo}


if __name__ == "__main__":
    main()
