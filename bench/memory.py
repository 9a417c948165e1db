"""Peak worker RSS for 1, 4 and 16 megapixel inputs at x4, one fresh subprocess per size.

    python -m bench.memory [--sizes 1,4,16] [--scale 4] [--precision bf16] [--format png]

Each child imports the engine, warms it up on small images (tile shapes compiled, buffers allocated), notes its
RSS, then runs ``upscale_file`` on the PNG once, as a worker does, and reports its peak RSS (ru_maxrss).
Flat means: peak minus the output's own bytes stays about the same whatever the input size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import prepare
from bench.common import PYTHON, ROOT, fmt, markdown_table, publish, threads, training_paused
from bench.engine_peers import test_image

MiB = 2**20


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM) so that the job's own peak is not the compilation's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return peak_rss()


def child(src: Path, scale: int, precision: str | None, fmt_: str) -> None:
    from upscale_worker.engine import Options, upscale_file

    options = Options(precision=precision)
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        from PIL import Image

        for side in (300, 512):  # a worker that has run small and larger jobs: tiles 128 and 280 compiled
            warm_up = Path(tmp) / f"warm{side}.png"
            Image.fromarray(test_image(side)).save(warm_up)
            upscale_file(warm_up, Path(tmp) / f"warm.{fmt_}", scale, fmt=fmt_, options=options)
        ready, ready_peak = current_rss(), peak_rss()
        job_peak_known = reset_peak()
        t = time.perf_counter()
        result = upscale_file(src, Path(tmp) / f"out.{fmt_}", scale, fmt=fmt_, options=options)
        seconds = time.perf_counter() - t
    w, h = result.output_size
    job_peak = vm_hwm() if job_peak_known else peak_rss()
    print(
        json.dumps(
            {
                "ready": ready,
                "ready_peak": ready_peak,
                "peak": job_peak,
                "max_rss": peak_rss(),
                "seconds": seconds,
                "output_bytes": w * h * 3,
                "input": result.input_size,
            }
        )
    )


def resident_child(precision: str | None) -> None:
    """RSS of a worker that has served every scale at both tile sides with the clean models, then with the
    JPEG-aware twins too (both variants of every scale compiled), then nine small image sizes."""
    from upscale_worker.engine import Options, upscale_array

    rss = {}
    for source, key in (("clean", "tiles"), ("compressed", "both")):
        for scale in (2, 3, 4):
            for side in (300, 512):
                upscale_array(test_image(side), scale, Options(precision=precision, source=source))
        rss[key] = current_rss()
    for side in range(270, 180, -10):  # each smaller than a tile: a window of its own size
        upscale_array(test_image(side), 4, Options(precision=precision))
    print(json.dumps({**rss, "windows": current_rss()}))


def with_twins(models: Path, folder: Path) -> tuple[Path, list[int]]:
    """``models`` as it is when every scale has its JPEG-aware twin; else a folder of links to it whose
    manifest adds a stand-in twin naming the clean IR files for each scale that lacks one (the same network,
    shapes and weight sizes: the same memory once compiled). Returns the folder and the stand-in scales."""
    from upscale_worker.engine.models import read_manifest, variant_of

    entries = read_manifest(models)["models"]
    missing = sorted({e["scale"] for e in entries} - {e["scale"] for e in entries if variant_of(e) == "jpeg"})
    if not missing:
        return models, []
    for path in models.iterdir():
        if path.suffix in (".xml", ".bin"):
            (folder / path.name).symlink_to(path.resolve())
    twins = [
        {**e, "variant": "jpeg", "name": e["name"] + "_standin_jpeg"}
        for e in entries
        if e["scale"] in missing and variant_of(e) == "clean"
    ]
    (folder / "manifest.json").write_text(json.dumps({"models": entries + twins}))
    return folder, missing


def resident(models: Path, precision: str | None) -> tuple[dict, list[int]]:
    cmd = [PYTHON, "-m", "bench.memory", "--resident-child"] + (
        ["--precision", precision] if precision else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder, stand_ins = with_twins(models, Path(tmp))
        env = dict(os.environ, UPSCALE_MODELS_DIR=str(folder))
        with training_paused():
            done = subprocess.run(
                cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True
            )
    return json.loads(done.stdout.strip().splitlines()[-1]), stand_ins


def make_input(megapixels: float, folder: Path) -> Path:
    from PIL import Image

    w = round(math.sqrt(megapixels * 1e6 * 4 / 3))
    h = round(megapixels * 1e6 / w)
    block = test_image(512, seed=1)
    rgb = np.tile(block, (h // 512 + 1, w // 512 + 1, 1))[:h, :w]
    path = folder / f"in_{megapixels:g}mp.png"
    Image.fromarray(np.ascontiguousarray(rgb)).save(path, compress_level=1)
    return path


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1,4,16", help="input megapixels")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--precision", default=None, help="default: the engine's default")
    p.add_argument("--format", default="png", choices=("png", "jpeg", "webp"))
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--resident-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--resident-only", action="store_true", help="only the resident size between jobs, printed"
    )
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.scale, args.precision, args.format)
        return ""
    if args.resident_child:
        resident_child(args.precision)
        return ""
    if args.resident_only:
        print(json.dumps({k: round(v / MiB) for k, v in resident(prepare.MODELS, args.precision)[0].items()}))
        return ""
    prepare.prepare()
    env = dict(os.environ, UPSCALE_MODELS_DIR=str(prepare.MODELS))
    rows, results = [], []
    with tempfile.TemporaryDirectory(dir=prepare.OUT) as tmp:
        for mp in [float(s) for s in args.sizes.split(",")]:
            src = make_input(mp, Path(tmp))
            cmd = [
                PYTHON,
                "-m",
                "bench.memory",
                "--child",
                str(src),
                "--scale",
                str(args.scale),
                "--format",
                args.format,
            ]
            if args.precision:
                cmd += ["--precision", args.precision]
            with training_paused():
                done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            src.unlink()
            if done.returncode != 0:
                rows.append(
                    [f"{mp:g} MP", "failed", done.stderr.strip().splitlines()[-1][:100], "", "", "", ""]
                )
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results.append(r)
            (w, h) = r["input"]
            print(mp, r, flush=True)
            rows.append(
                [
                    f"{mp:g} MP ({w}x{h})",
                    f"{w * args.scale}x{h * args.scale}",
                    fmt(r["output_bytes"] / MiB, 0),
                    fmt(r["ready"] / MiB, 0),
                    fmt(r["peak"] / MiB, 0),
                    fmt((r["peak"] - r["output_bytes"]) / MiB, 0),
                    f"{(r['peak'] - r['ready']) / r['output_bytes']:.2f}",
                    fmt(r["seconds"], 1),
                ]
            )
    held, stand_ins = resident(prepare.MODELS, args.precision)
    print("resident", held, flush=True)
    from upscale_worker.engine import runtime

    lifetime = ", ".join(f"{fmt(r['max_rss'] / MiB, 0)} MiB" for r in results) or "-"
    headers = [
        "input",
        "output",
        "output buffer (MiB)",
        "RSS ready (MiB)",
        "peak RSS during the job (MiB)",
        "peak - output (MiB)",
        "(peak - ready) / output",
        "seconds",
    ]
    notes = [
        f"x{args.scale}, {args.precision or runtime.precision(args.scale)} (the engine's default unless --precision), tiles "
        f"{'/'.join(map(str, runtime.tile_sizes()))} (the engine picks per image), {args.format.upper()} output, "
        f"{threads()} threads; one fresh process per size running upscale_file as a worker does (engine only, "
        "no Celery/Django: those add a constant).",
        "RSS ready: after importing the engine and upscaling a 300x300 and a 512x512 image (tiles 128 and 280 "
        "compiled). Peak during the job: VmHWM reset (clear_refs 5) once ready, read after upscale_file "
        f"returns. The process's lifetime peak (ru_maxrss) includes the model compilation: {lifetime}.",
        "Output buffer: the uint8 RGB result (W x H x 3). Flat means peak - output stays about constant; "
        "(peak - ready) / output shows how many output-sized copies the decode/encode path holds at once.",
        f"Resident between jobs: a worker that has served x2, x3 and x4 at both tile sides holds "
        f"{fmt(held['tiles'] / MiB, 0)} MiB; after nine more image sizes under 280 pixels at x4 (each a window "
        f"of its own size) {fmt(held['windows'] / MiB, 0)} MiB, as only the last two such shapes stay compiled. "
        f"With the JPEG-aware twin of every scale compiled as well: {fmt(held['both'] / MiB, 0)} MiB"
        + (
            f" (stand-in twins for x{', x'.join(map(str, stand_ins))}: the clean IR under a jpeg entry, the same "
            "network and so the same memory)."
            if stand_ins
            else "."
        ),
        "The platform itself refuses outputs above MAX_OUTPUT_MEGAPIXELS (100 MP by default), so the "
        "16 MP x4 row is an engine limit test, not a job a user can submit.",
    ]
    return publish("memory", "Peak worker RSS by input size", markdown_table(headers, rows), notes)


if __name__ == "__main__":
    main()
