"""The engine against the CPU's int8 peak, measured in the same run.

    python -m bench.engine_peak [--before DIR] [--scales 2,3,4] [--side 280] [--rounds 5]

1. The peak: bench/int8_peak.c, compiled with gcc here, times the CPU's int8 dot-product instruction
   (AVX2 vpmaddubsw + vpmaddwd, AVX-512 VNNI or AVX-VNNI vpdpbusd, AMX tdpbusd) on the engine's thread
   count; the share is given of the two best paths (on an AMX Xeon: the AMX tiles and AVX-512 VNNI).
2. One window: the int8 model compiled for a ``side`` x ``side`` window, as the engine runs it; its
   multiply-accumulates are counted from the IR's convolutions, so the effective rate (MACs / time) and its
   share of the peak describe what the CPU actually computes.
3. A 512x512 photo through ``upscale_array`` (tiles, overlap, border, back-projection: the engine's
   defaults) at x2 and x4, and the x4/x2 time ratio.
``--before DIR``: the same rows for another model folder (e.g. the unfolded tail), interleaved with the
shipped one, so that a before/after ratio comes from one run on one machine. Each time is the best of
``--rounds`` interleaved runs. Writes its table to docs/benchmarks.md (block engine-peak).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import LOADS, ROOT, load_average, machine, markdown_table, write_block
from bench.engine_peers import test_image

PAGE = ROOT / "docs" / "benchmarks.md"
PEAK_SOURCE = Path(__file__).with_name("int8_peak.c")
GOALS = {"share": 0.60, "x4_over_x2": 1.25}


def int8_peak(n_threads: int, seconds: float = 2.0) -> dict[str, float]:
    """GMAC/s per int8 instruction path this CPU has, on ``n_threads`` threads (bench/int8_peak.c).
    Raises subprocess.CalledProcessError when gcc or the program fails."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "int8_peak"
        subprocess.run(["gcc", "-O2", "-fopenmp", str(PEAK_SOURCE), "-o", str(exe)], check=True)
        out = subprocess.run(
            [str(exe), str(n_threads), str(seconds)], check=True, capture_output=True, text=True
        )
    return {path: float(rate) for path, rate in (line.split() for line in out.stdout.splitlines())}


def network_macs(xml: Path, height: int, width: int) -> int:
    """Multiply-accumulates of one inference of the IR at ``xml`` on a 1x3xHxW input: for each convolution,
    output elements x input channels x kernel area (group convs do not occur in EDSR)."""
    import openvino as ov

    model = ov.Core().read_model(xml)
    model.reshape([1, 3, height, width])
    total = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() == "Convolution":
            out = op.get_output_shape(0)
            weights = op.input(1).get_shape()  # Cout x Cin x kh x kw
            total += int(np.prod(list(out))) * int(np.prod(list(weights)[1:]))
    return total


def window_runner(folder: Path, scale: int, side: int):
    """One int8 inference of a side x side window of the ``scale`` model in ``folder``, as the engine compiles it."""
    from upscale_worker.engine import runtime

    request = runtime.compiled_model(
        folder, scale, "clean", "int8", side, side, runtime.threads()
    ).create_infer_request()
    batch = np.random.default_rng(0).uniform(0, 255, (1, 3, side, side)).astype(np.float32)
    return lambda: request.infer([batch])


def photo_runner(folder: Path, scale: int, rgb: np.ndarray, window_costs: Path):
    """The photo through the engine's defaults, its windows weighed by the cost table at ``window_costs``
    (a missing file: by pixel counts)."""
    from upscale_worker.engine import Options, upscale_array
    from upscale_worker.engine import config as engine_config

    def run():
        engine_config.update(models_dir=folder, window_costs=window_costs)
        upscale_array(rgb, scale, Options())

    return run


def best_times(runners: dict, rounds: int) -> dict:
    """Best seconds of each runner over ``rounds`` interleaved rounds, after one warm-up call each."""
    for run in runners.values():
        run()
    best = {key: float("inf") for key in runners}
    for _ in range(rounds):
        LOADS.append(os.getloadavg()[0])
        for key, run in runners.items():
            t = time.perf_counter()
            run()
            best[key] = min(best[key], time.perf_counter() - t)
    LOADS.append(os.getloadavg()[0])
    return best


def main(argv: list[str] | None = None) -> str:
    from upscale_worker.engine import config as engine_config
    from upscale_worker.engine import runtime
    from upscale_worker.engine.models import find_model, models_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, help="another model folder to time beside the shipped one")
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--side", type=int, default=280, help="window side for the per-window rows")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    engine_config.update(precision=engine_config.current().precision or "int8")
    scales = [int(s) for s in args.scales.split(",")]
    folders = {"shipped": models_dir()} | ({"before": args.before.resolve()} if args.before else {})
    n = runtime.threads()
    peaks = int8_peak(n)
    shown = sorted(peaks, key=peaks.get, reverse=True)[:2]  # e.g. amx and avx512vnni
    print(f"int8 peak on {n} threads: {peaks} GMAC/s", flush=True)

    rgb = test_image(512)
    windows = {(f, s): window_runner(d, s, args.side) for f, d in folders.items() for s in scales}
    table = engine_config.current().window_costs
    photos = {
        (f, s): photo_runner(d, s, rgb, table) for f, d in folders.items() for s in (2, 4) if s in scales
    }
    if table.exists():  # the same photo with windows chosen by pixel counts, timed in the same rounds
        photos |= {
            ("pixels", s): photo_runner(models_dir(), s, rgb, table.with_suffix(".none"))
            for s in (2, 4)
            if s in scales
        }
    window_s = best_times(windows, args.rounds)
    photo_s = best_times(photos, max(2, args.rounds // 2))
    after = int8_peak(n)  # the CPU's state may drift during the run: report both

    rows = []
    for (folder, scale), seconds in window_s.items():
        xml = find_model(scale, "f32", folders[folder]).xml  # the int8 IR has the same convolutions
        macs = network_macs(xml, args.side, args.side)
        rate = macs / seconds / 1e9
        photo = photo_s.get((folder, scale))
        rows.append(
            [
                f"{folder} x{scale}",
                f"{macs / args.side**2 / 1e6:.3f}",
                f"{seconds * 1000:.0f}",
                f"{rate:.1f}",
                *(f"**{rate / peaks[path]:.0%}**" for path in shown),
                f"{photo:.2f}" if photo else "-",
            ]
        )
    by_pixels = [
        f"512² photo with windows chosen by pixel counts instead of this host's cost table ({table.name}): "
        + ", ".join(
            f"x{s} {photo_s['pixels', s]:.2f} s (table / pixels {photo_s['shipped', s] / photo_s['pixels', s]:.2f})"
            for s in (2, 4)
            if ("pixels", s) in photo_s and ("shipped", s) in photo_s
        )
    ]
    ratios = [
        f"{folder}: x4 / x2 on the 512x512 photo **{photo_s[folder, 4] / photo_s[folder, 2]:.2f}x**"
        for folder in folders
        if (folder, 2) in photo_s and (folder, 4) in photo_s
    ]
    headers = [
        "model, scale",
        "MMAC per input pixel",
        f"ms per {args.side}² window (int8)",
        "effective GMAC/s",
        *(f"share of {path} peak" for path in shown),
        "512² photo, s",
    ]
    notes = [
        f"int8 peak measured in this run on {n} threads: {', '.join(f'{k} {v:.1f}' for k, v in peaks.items())}"
        f" GMAC/s ({', '.join(f'{p} {after.get(p, 0):.1f}' for p in shown)} again after the timings)."
        f" Goal: >= {GOALS['share']:.0%} of it.",
        *ratios,
        *(by_pixels if any(key[0] == "pixels" for key in photo_s) else []),
        f"Goal: x4 at most {GOALS['x4_over_x2']}x the time of x2.",
        (
            "MACs counted from the IR's convolutions at the window's shape (the folded tail's 5x5 conv "
            "included, float ones too); times: best of interleaved rounds; the photo row runs the engine's "
            "defaults (int8, windows fitted to the picture and weighed by the host's cost table where "
            "there is one, overlap 8, replicated border, back-projection)."
        ),
    ]
    if args.before:
        notes.append(f"before: the models in {args.before} (unfolded tail), timed interleaved with shipped.")
    caption = (
        f"**The engine against the CPU's int8 peak** ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{machine()}, {load_average()})"
    )
    text = "\n".join(
        [
            caption,
            "",
            markdown_table(headers, rows),
            "",
            *[f"- {n}" for n in notes],
            "",
            "`python -m bench.engine_peak` rewrites this block.",
        ]
    )
    print("\n" + text + "\n", flush=True)
    write_block("engine-peak", text, PAGE)
    return text


if __name__ == "__main__":
    main()
