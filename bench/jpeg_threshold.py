"""The JPEG quality below which `auto` runs the JPEG-aware model: both models on the held-out training images.

    python -m bench.jpeg_threshold --weights training/runs/x2-jpeg/best.pt [--scale 2] [--qualities 50-100:5]

The clean model of ``models/`` and a JPEG-aware checkpoint, exported here into a temporary folder (FP16 IR,
no int8: both models run at one precision, so the comparison is of the weights), upscale the 11 held-out
training images (train.py's validation split; never a benchmark set) whose LR was saved by Pillow as a JPEG
at each quality (4:2:0) and decoded. The threshold is the lowest quality from which the clean model is at
least as good as the JPEG-aware one at every higher quality measured: below it the JPEG-aware model wins.
It becomes upscale_worker.engine.compression.JPEG_QUALITY_THRESHOLD by hand, with this block as its record.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from bench.common import ROOT, fmt, markdown_table, publish, threads
from upscale_worker.engine import config as engine_config
from upscale_worker.engine.models import read_manifest, variant_of, write_manifest


def qualities(text: str) -> list[int]:
    """ "50-100:5" -> [50, 55, ..., 100]."""
    span, _, step = text.partition(":")
    low, _, high = span.partition("-")
    return list(range(int(low), int(high or low) + 1, int(step or 5)))


def clean_models(scale: int, out: Path) -> None:
    """The shipped clean IR of ``scale`` (FP16 and int8) copied into ``out`` with their manifest entries."""
    entries = [
        e
        for e in read_manifest(ROOT / "models")["models"]
        if e["scale"] == scale and variant_of(e) == "clean"
    ]
    if not entries:
        raise SystemExit(f"models/ has no clean x{scale} model")
    for entry in entries:
        for name in entry["files"].values():
            shutil.copyfile(ROOT / "models" / name, out / name)
    write_manifest({"models": entries}, out)


def shown(path: Path) -> str:
    path = path.resolve()
    return f"`{path.relative_to(ROOT)}`" if path.is_relative_to(ROOT) else f"`{path}`"


def threshold(means: dict[int, tuple[float, float, float]]) -> int:
    """The lowest quality from which clean >= JPEG-aware at every higher quality (101: the JPEG-aware model
    wins even at 100)."""
    found = 101
    for quality in sorted(means, reverse=True):
        _, clean, jpeg = means[quality]
        if clean < jpeg:
            break
        found = quality
    return found


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--weights",
        type=Path,
        required=True,
        help="the JPEG-aware checkpoint (training/runs/x2-jpeg/best.pt)",
    )
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4))
    p.add_argument("--qualities", type=qualities, default=qualities("50-100:5"))
    p.add_argument("--precision", default=None, help="default: bf16 where the CPU has it, else f32")
    args = p.parse_args(argv)

    from training import export
    from upscale_worker import evaluate
    from upscale_worker.engine import runtime

    with tempfile.TemporaryDirectory(prefix="jpeg-threshold-") as tmp:
        out = Path(tmp)
        clean_models(args.scale, out)
        export.main(
            [
                "--weights",
                str(args.weights),
                "--scale",
                str(args.scale),
                "--variant",
                "jpeg",
                "--out",
                str(out),
                "--no-int8",
            ]
        )
        engine_config.update(models_dir=out)
        precision = args.precision or ("bf16" if runtime.cpu_has_bf16() else "f32")
        means = {}
        with export.held_out_images(export.TRAIN_DIR) as (held_out,):
            for quality in args.qualities:
                m = evaluate.mean_jpeg_row(evaluate.evaluate_jpeg(held_out, args.scale, quality, precision))
                means[quality] = (m.bicubic, m.clean, m.jpeg)
                print(
                    f"Q{quality}: bicubic {m.bicubic:.3f}, clean {m.clean:.3f}, JPEG-aware {m.jpeg:.3f}",
                    flush=True,
                )
    found = threshold(means)
    rows = [
        [q, fmt(b, 2), fmt(c, 2), fmt(j, 2), f"{j - c:+.2f}", "JPEG-aware" if q < found else "clean"]
        for q, (b, c, j) in sorted(means.items())
    ]
    meta = args.weights.parent / "meta.json"
    iteration = json.loads(meta.read_text()).get("best_iteration") if meta.exists() else None
    headers = [
        "JPEG quality",
        "bicubic",
        "clean model",
        "JPEG-aware model",
        "JPEG-aware - clean",
        "auto runs",
    ]
    notes = [
        f"x{args.scale}, {precision}, {threads()} threads; mean Y-PSNR (dB, {args.scale}-pixel border) over the 11 "
        "held-out training images (train.py's validation split), LR by MATLAB bicubic then a Pillow JPEG at the "
        "quality (4:2:0), decoded; every column from the same decoded LR.",
        f"JPEG-aware model: {shown(args.weights)} (iteration {iteration}); clean model: models/ as shipped.",
        f"**Threshold: {found}** (the lowest quality from which the clean model is at least as good at every "
        "higher quality); `auto` runs the JPEG-aware model below it.",
    ]
    return publish(
        "jpeg-threshold",
        "Where the clean model catches up with the JPEG-aware one",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
