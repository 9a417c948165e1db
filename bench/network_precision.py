"""Each network at each precision on this CPU: one 1280x720 photo at x4 through the engine, interleaved.

    python -m bench.network_precision [--size 1280x720] [--scale 4] [--rounds 1]

RLFN in f32, bf16 (only where the CPU runs it natively: the engine refuses it elsewhere) and int8 (its NNCF
twin, whatever it costs in PSNR: the model card says whether the engine would pick it), and EDSR at the
engine's default precision as the peer. Each case is warmed up once (the tile's compile and caches), then
``--rounds`` rounds go through the cases in turn, the first case rotating each round; the table gives each
case's best seconds, its time against RLFN's default and against EDSR's default, and which precision the
engine picks for RLFN here (runtime.precision: int8 only where the manifest holds its twin faithful).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np

from bench.common import fmt, markdown_table, publish, training_paused
from bench.photo_latency import photo


def cases(scale: int) -> list[tuple[str, str]]:
    """(network, precision) pairs this CPU can run: bf16 only where it is native."""
    from upscale_worker.engine import runtime

    rlfn = ["f32", "bf16", "int8"] if runtime.cpu_has_bf16() else ["f32", "int8"]
    return [("rlfn", p) for p in rlfn] + [("edsr", runtime.precision(scale, "clean", "edsr"))]


def picture(width: int, height: int) -> np.ndarray:
    """bench.photo_latency's photo-like JPEG, decoded: H x W x 3 uint8."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(photo(width, height))).convert("RGB"))


def run_once(rgb: np.ndarray, scale: int, network: str, precision: str) -> float:
    from upscale_worker.engine import Options, upscale_array

    started = time.perf_counter()
    upscale_array(rgb, scale, Options(precision=precision, network=network))
    return time.perf_counter() - started


def measure(rgb: np.ndarray, scale: int, rounds: int) -> dict[tuple[str, str], float]:
    """Best seconds per (network, precision) over ``rounds`` interleaved rounds, after one warm-up each."""
    todo = cases(scale)
    for network, precision in todo:
        run_once(rgb, scale, network, precision)
    best: dict[tuple[str, str], float] = {}
    for r in range(rounds):
        for network, precision in todo[r % len(todo) :] + todo[: r % len(todo)]:
            with training_paused():
                took = run_once(rgb, scale, network, precision)
            key = (network, precision)
            best[key] = min(best.get(key, took), took)
            print(f"round {r + 1}: {network} {precision} {took:.2f} s", flush=True)
    return best


def main(argv: list[str] | None = None) -> None:
    from upscale_worker.engine import runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the photo")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    best = measure(picture(width, height), args.scale, args.rounds)
    default = runtime.precision(args.scale, "clean", "rlfn")
    edsr_default = runtime.precision(args.scale, "clean", "edsr")
    rlfn_ref, edsr_ref = best[("rlfn", default)], best[("edsr", edsr_default)]
    rows = [
        [
            f"{network.upper()} {precision}" + (" (engine default)" if precision == default else ""),
            fmt(seconds * 1000, 0),
            f"{seconds / rlfn_ref:.2f}x",
            f"{seconds / edsr_ref:.2f}x",
        ]
        for (network, precision), seconds in best.items()
        if network == "rlfn"
    ]
    rows.append([f"EDSR {edsr_default} (engine default)", fmt(edsr_ref * 1000, 0), "", "1.00x"])
    table = markdown_table(
        [
            f"{width}x{height} x{args.scale}, engine",
            "ms per image (best)",
            f"time / RLFN {default}",
            f"time / EDSR {edsr_default}",
        ],
        rows,
    )
    publish(
        "network-precision",
        f"RLFN's precisions and EDSR's default on this CPU ({args.rounds} interleaved round(s) after a warm-up)",
        table,
        [
            f"The engine's default for RLFN x{args.scale} here: {default} (int8 only where the manifest holds "
            "its twin within 0.05 dB of f32; bf16 where the CPU runs it natively).",
            f"{runtime.threads()} inference threads; the background training paused while timing.",
        ],
    )


if __name__ == "__main__":
    main()
