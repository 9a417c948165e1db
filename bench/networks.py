"""EDSR and RLFN side by side through the command line (issue 23's checks), in one run.

    python -m bench.networks [--rounds 3] [--size 1280x720] [--scale 4] [--no-psnr]

Speed: one photo-like 1280x720 PNG (a Kodak photo resized to that size: a real picture's content) upscaled
x4 by ``python -m upscale_worker upscale ... --network N``, each network in its own process, as a user runs
it: process start, model compile (from OpenVINO's cache, filled by one untimed warm-up run of each network),
decode, tiles, encode. The rows alternate in every round, the order reversed every other round, so the
machine's load falls on all alike; each network's median over ``--rounds`` is compared. Each runs the
precision the engine picks on this CPU (``runtime.precision``: the model card's choice per CPU family).
Goal (issue 23): RLFN at most 1/1.5 of EDSR's time. A third row runs RLFN's int8 twin (``--precision int8``),
not a default anywhere (it is 0.15-0.27 dB below RLFN f32 on Set5, docs/rlfn.md): on CPUs with AMX int8
it shows what the twin would give once quantisation-aware fine-tuning makes it faithful.

Fidelity: ``python -m upscale_worker evaluate --network N --scale S`` on Set5 (the paper's protocol: MATLAB
bicubic LR, Y channel, ``scale`` pixels of border shaved); goal: RLFN x2 >= 37.9 dB and x4 >= 32.1 dB.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import BENCHMARK_SETS, LOADS, PYTHON, ROOT, fmt, markdown_table, publish, training_paused

# (row, network, precision: None for the engine's default on this CPU)
RUNS = (("edsr", "edsr", None), ("rlfn", "rlfn", None), ("rlfn-int8", "rlfn", "int8"))
LABELS = {
    "edsr": "EDSR-baseline (the default)",
    "rlfn": "RLFN (`--network rlfn`)",
    "rlfn-int8": "RLFN int8 twin (`--network rlfn --precision int8`; not faithful, no default)",
}
PHOTO_SOURCE = ROOT.parent / "shared" / "datasets" / "train" / "Kodak24"
SPEED_GOAL = 1 / 1.5  # RLFN's time over EDSR's, at most
PSNR_GOALS = {2: 37.9, 4: 32.1}  # RLFN on Set5 through the CLI, at least


def photo(path: Path, width: int, height: int) -> Path:
    """The first Kodak photo resized (Lanczos) to ``width`` x ``height``, saved as PNG at ``path``."""
    from PIL import Image

    source = sorted(PHOTO_SOURCE.glob("*.png"))[0]
    with Image.open(source) as im:
        im.convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(path)
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m upscale_worker ARGS`` from the repository root; raises CalledProcessError on failure."""
    return subprocess.run(
        [PYTHON, "-m", "upscale_worker", *args], cwd=ROOT, capture_output=True, text=True, check=True
    )


def upscale_seconds(network: str, precision: str | None, image: Path, out: Path, scale: int) -> float:
    """Wall-clock seconds of one CLI upscale of ``image`` at ``scale`` on ``network`` at ``precision`` (None:
    the engine's default)."""
    chosen = ["--precision", precision] if precision else []
    start = time.perf_counter()
    cli("upscale", str(image), str(out), "--scale", str(scale), "--network", network, *chosen, "--overwrite")
    return time.perf_counter() - start


def default_precision(network: str, scale: int) -> str:
    """The precision the engine runs ``network`` at on this CPU (asked in a child, as the CLI decides)."""
    code = (
        f"from upscale_worker.engine import runtime; print(runtime.precision({scale}, 'clean', {network!r}))"
    )
    return subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def set5_psnr(network: str, precision: str | None, scale: int) -> float:
    """Set5 mean Y-PSNR of ``network`` at ``scale`` and ``precision`` (None: the default) as ``upscale_worker
    evaluate`` prints it (dB)."""
    chosen = ["--precision", precision] if precision else []
    text = cli(
        "evaluate", str(BENCHMARK_SETS / "Set5"), "--scale", str(scale), "--network", network, *chosen
    ).stdout
    means = re.findall(r"^mean\s+[\d.]+\s+[\d.]+\s+([\d.]+)", text, re.M)
    if not means:
        raise RuntimeError(f"no mean row in the evaluate output:\n{text}")
    return float(means[0])


def measure(rounds: int, width: int, height: int, scale: int) -> dict[str, list[float]]:
    """{row: seconds per round}, the rows alternating (the order reversed every other round)."""
    times: dict[str, list[float]] = {row: [] for row, *_ in RUNS}
    with tempfile.TemporaryDirectory(prefix="bench-networks-") as folder:
        image = photo(Path(folder) / "photo.png", width, height)
        out = Path(folder) / "out.png"
        for _, network, precision in RUNS:  # untimed: fills OpenVINO's cache as a user's first run does
            upscale_seconds(network, precision, image, out, scale)
        for i in range(rounds):
            for row, network, precision in RUNS if i % 2 == 0 else RUNS[::-1]:
                with training_paused():
                    times[row].append(upscale_seconds(network, precision, image, out, scale))
                print(f"round {i + 1}: {row} {times[row][-1]:.2f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the photo")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4))
    p.add_argument("--no-psnr", action="store_true", help="skip the Set5 check")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    precision = {row: chosen or default_precision(network, args.scale) for row, network, chosen in RUNS}
    times = measure(args.rounds, width, height, args.scale)
    loads = list(LOADS)
    median = {row: statistics.median(times[row]) for row in times}
    psnr: dict[tuple[str, int], float] = {}
    if not args.no_psnr:
        for row, network, chosen in RUNS:
            for scale in PSNR_GOALS:
                psnr[row, scale] = set5_psnr(network, chosen, scale)
                print(f"{row} Set5 x{scale}: {psnr[row, scale]:.3f} dB", flush=True)
    megapixels = width * height * args.scale**2 / 1e6
    headers = [
        "network",
        "precision (the engine's default here, unless asked)",
        f"{width}x{height} x{args.scale}, each round (s)",
        "median (s)",
        "output MP/s",
        "time / EDSR's",
    ]
    headers += [f"Set5 x{s} PSNR (dB)" for s in PSNR_GOALS] if psnr else []
    rows = []
    for n, *_ in RUNS:
        row = [
            LABELS[n],
            precision[n],
            " / ".join(f"{t:.1f}" for t in times[n]),
            fmt(median[n], 1),
            fmt(megapixels / median[n], 2),
            f"**{median[n] / median['edsr']:.2f}**",
        ]
        rows.append(row + ([fmt(psnr[n, s], 3) for s in PSNR_GOALS] if psnr else []))
    ratio = median["rlfn"] / median["edsr"]
    notes = [
        f"Goal (issue 23): RLFN in at most {SPEED_GOAL:.2f}x EDSR's time. Measured: {ratio:.2f}x "
        f"({'met' if ratio <= SPEED_GOAL else 'not met'})"
        + (
            "; Set5 through the CLI: RLFN "
            + ", ".join(
                f"x{s} {psnr['rlfn', s]:.3f} dB (goal >= {g}: {'met' if psnr['rlfn', s] >= g else 'not met'})"
                for s, g in PSNR_GOALS.items()
            )
            if psnr
            else ""
        )
        + ".",
        f"Each time: `python -m upscale_worker upscale photo.png out.png --scale {args.scale} --network N "
        f"[--precision P] --overwrite` in a new process (start, compile from OpenVINO's cache, decode, tiles, PNG encode), "
        f"wall clock; the photo a Kodak picture resized to {width}x{height}; {os.cpu_count()} threads; the "
        f"rows alternate, the order reversed every other round, after one untimed warm-up run of each.",
        f"1-min load while timing: {min(loads):.1f} to {max(loads):.1f} (the machine is shared).",
        "PSNR: `python -m upscale_worker evaluate ../shared/datasets/benchmark/Set5 --scale S --network N "
        "[--precision P]` (MATLAB bicubic LR, Y channel, S-pixel border), each row at its precision.",
    ]
    return publish(
        "networks",
        f"EDSR and RLFN through the CLI: a {width}x{height} photo at x{args.scale}",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
