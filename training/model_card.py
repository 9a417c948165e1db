"""Write models/README.md: the model card, with the PSNR/SSIM table measured by the engine itself.

    python -m training.model_card --benchmarks ../shared/datasets/benchmark

Each cell is the evaluate tool's mean over a benchmark set (Y channel, border = scale, MATLAB bicubic
LR) beside bicubic and the EDSR paper's EDSR-baseline, with how far we are from the paper.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.blocks import DOCS, write_block
from upscale_worker.engine import EngineError, Options, runtime
from upscale_worker.engine.compression import JPEG_QUALITY_THRESHOLD
from upscale_worker.engine.models import (
    NETWORK_NAMES,
    VARIANT_NAMES,
    VARIANTS,
    available_scales,
    entries_for,
    find_model,
    int8_is_faithful,
    measured_psnr,
    read_manifest,
    write_manifest,
)
from upscale_worker.evaluate import Row, evaluate, mean_row

ROOT = Path(__file__).resolve().parent.parent
SETS = ("Set5", "Set14", "B100")
SCALES = (2, 3, 4)
# EDSR paper, Table 3, EDSR-baseline (Y channel PSNR, dB).
PAPER = {
    "Set5": {2: 37.99, 3: 34.37, 4: 32.09},
    "Set14": {2: 33.57, 3: 30.28, 4: 28.58},
    "B100": {2: 32.16, 3: 29.08, 4: 27.57},
}
# RLFN's published weights on the paper's protocol (PyTorch f32, issue 23), the bar its rows are read against.
PAPER_RLFN = {
    "Set5": {2: 38.08, 4: 32.24},
    "Set14": {2: 33.72, 4: 28.62},
    "B100": {2: 32.24, 4: 27.61},
}
FIRST_BAR_SET5 = {2: 37.0, 3: 33.3, 4: 31.0}
FIRST_BAR_FRACTION = 0.65


# Each cell measured, keyed by what decides it (network, set, scale, precision, the model file's sha256 and
# the CPU's bf16): a card regenerated after one model changes measures only that model's cells again.
CELLS = ROOT / "models" / "card_cells.json"


def measure(
    benchmarks: Path,
    precision: str | None,
    network: str = "edsr",
    scales: tuple[int, ...] = SCALES,
    cache: Path | None = CELLS,
) -> dict:
    """(set, scale) -> the evaluate tool's mean Row for ``network`` at ``precision`` (None: the engine's
    default for each scale on this CPU); bicubic alone where the network has no model for the scale. Cells
    whose key is in ``cache`` are read from it, the others measured and added."""
    known = json.loads(cache.read_text()) if cache and cache.exists() else {}
    cells = {}
    for name in SETS:
        for scale in scales:
            chosen = precision or runtime.precision(scale, "clean", network)
            try:
                model = find_model(scale, chosen, network=network)
                options, model_id = (
                    Options(precision=precision, network=network),
                    model.entry["sha256"]["bin"],
                )
            except EngineError:  # no model for this scale yet: bicubic only
                options, model_id = None, "bicubic"
            key = f"{network}/{name}/x{scale}/{chosen}/{model_id}/bf16={runtime.cpu_has_bf16()}"
            if key not in known:
                known[key] = list(mean_row(evaluate(benchmarks / name, scale, options)).__dict__.values())
                if cache:
                    cache.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
            mean = Row(*known[key])
            cells[(name, scale)] = mean
            print(f"{name} x{scale}: bicubic {mean.bicubic_psnr:.2f}, {network} {mean.psnr:.2f}", flush=True)
    return cells


def measure_jpeg_sets(benchmarks: Path, sets: list[str], qualities: tuple[int, ...] = (50, 75, 90)) -> None:
    """Add ``sets`` to the ``psnr_by_quality`` of every network's JPEG-aware entries in the manifest (bicubic,
    the clean and the JPEG-aware model on the same decoded JPEG LR, each at the engine's default precision),
    as training.export --variant jpeg --evaluate measures Set5 and the held-out images."""
    from training.export import measure_by_quality

    folder = runtime.models_dir()
    for network in NETWORK_NAMES:
        for scale in available_scales(folder, network):
            if not entries_for(scale, "jpeg", folder, network):
                continue
            table = measure_by_quality(
                folder, scale, list(qualities), [benchmarks / s for s in sets], network
            )
            manifest = read_manifest(folder)
            for entry in manifest["models"]:
                same = entry["scale"] == scale and entry.get("network", "edsr") == network
                if same and entry.get("variant") == "jpeg":
                    entry.setdefault("psnr_by_quality", {}).update(table)
            write_manifest(manifest, folder)


def training_facts(network: str = "edsr") -> dict:
    """{(scale, variant): the run's meta.json} for the clean runs (training/runs/xN, RLFN's rlfn-xN) and
    the JPEG-aware twins (training/runs/xN-jpeg, rlfn-xN-jpeg) that exist."""
    prefix = "" if network == "edsr" else f"{network}-"
    facts = {}
    for scale in SCALES:
        for variant, suffix in (("clean", ""), ("jpeg", "-jpeg")):
            meta = ROOT / "training" / "runs" / f"{prefix}x{scale}{suffix}" / "meta.json"
            if meta.exists():
                facts[scale, variant] = json.loads(meta.read_text())
    return facts


def table(cells: dict) -> str:
    lines = [
        "| set | scale | bicubic | ours (PSNR / SSIM) | paper EDSR-baseline | gap to paper | way from bicubic to paper | first bar |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in SETS:
        for scale in SCALES:
            row, paper = cells[(name, scale)], PAPER[name][scale]
            way = (row.psnr - row.bicubic_psnr) / (paper - row.bicubic_psnr)
            bar = way >= FIRST_BAR_FRACTION and (name != "Set5" or row.psnr >= FIRST_BAR_SET5[scale])
            lines.append(
                f"| {name} | x{scale} | {row.bicubic_psnr:.2f} / {row.bicubic_ssim:.4f} | "
                f"{row.psnr:.2f} / {row.ssim:.4f} | {paper:.2f} | {row.psnr - paper:+.2f} dB | {way:.0%} | "
                f"{'met' if bar else 'not yet'} |"
            )
    return "\n".join(lines)


def training_table(facts: dict) -> str:
    lines = [
        "| model | started from | iterations | lr 1e-4, halved at (last piece) | device | training time | "
        "best validation PSNR (held-out training images; twins: JPEG at Q 50, 75, 90) |",
        "|---|---|---:|---|---|---:|---:|",
    ]
    for (scale, variant), m in sorted(facts.items()):
        name = f"x{scale}" + (" JPEG-aware" if variant == "jpeg" else "")
        start = (
            "the authors' weights"
            if "/weights/rlfn/" in m.get("init_weights", "")
            else f"the clean x{scale} weights"
            if m.get("init_weights")
            else "the authors' x2 body, the upsampler fitted by least squares"
            if m.get("upsampler_fit")
            else "the x2 body"
            if m.get("init_from")
            else "scratch"
        )
        lr_steps = (
            f"minutes {m['decay_minutes']}" if m.get("decay_minutes") else f"iterations {m.get('decay', '-')}"
        )
        autocast = ", bf16 autocast" if m.get("bf16", True) else ""
        lines.append(
            f"| {name} | {start} | {m['iteration']:,} | {lr_steps} | {m.get('device_name', m['device'])}"
            f"{autocast} | {m['train_seconds'] / 60:.0f} min | {m['best_val_psnr']:.2f} dB (iteration "
            f"{m['best_iteration']:,}) |"
        )
    return "\n".join(lines)


def precision_table(network: str = "edsr") -> str:
    """PSNR of each precision as the export measured it, per image set, and the one the engine runs by default."""
    lines = [
        "| scale | model | image set | f32 | bf16 | int8 | engine default |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for scale in SCALES:
        for variant in VARIANTS:  # the JPEG-aware model measured on JPEG inputs (its entry's psnr_input)
            for image_set, psnr in measured_psnr(scale, variant=variant, network=network).items():
                cells = [
                    f"{psnr[p]:.3f} ({psnr[p] - psnr['f32']:+.3f})" if p in psnr and "f32" in psnr else "-"
                    for p in ("f32", "bf16", "int8")
                ]
                lines.append(
                    f"| x{scale} | {VARIANT_NAMES[variant]} | {image_set} | {' | '.join(cells)} | "
                    f"{runtime.precision(scale, variant, network)} |"
                )
    return "\n".join(lines)


def jpeg_table(network: str = "edsr") -> str:
    """Per scale, image set and JPEG quality: bicubic, the clean and the JPEG-aware model on the same decoded
    JPEG LR, as training.export --variant jpeg measured them, and what `auto` runs at that quality."""
    lines = [
        "| scale | image set | JPEG quality | bicubic | clean model (gain) | JPEG-aware model (gain) | auto runs (gain) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for scale in SCALES:
        by_quality = next(
            (
                e["psnr_by_quality"]
                for e in entries_for(scale, "jpeg", network=network)
                if "psnr_by_quality" in e
            ),
            {},
        )
        for image_set, cells in by_quality.items():
            for quality, c in sorted(cells.items(), key=lambda kv: int(kv[0])):
                gain = lambda v: f"{v:.2f} ({v - c['bicubic']:+.2f})" if v is not None else "-"  # noqa: B023, E731 (used within this iteration)
                auto = "JPEG-aware" if int(quality) < JPEG_QUALITY_THRESHOLD else "clean"
                ran = c.get("jpeg") if auto == "JPEG-aware" else c.get("clean")
                lines.append(
                    f"| x{scale} | {image_set} | {quality} | {c['bicubic']:.2f} | {gain(c.get('clean'))} | "
                    f"{gain(c.get('jpeg'))} | {auto}: {gain(ran)} |"
                )
    return "\n".join(lines) if len(lines) > 2 else "No JPEG-aware model has been exported yet."


def side_by_side(edsr: dict, rlfn: dict) -> str:
    """Per set and RLFN scale: bicubic, EDSR and RLFN each at the engine's default precision on this CPU, their
    difference, and RLFN's published weights on the paper's protocol (PAPER_RLFN)."""
    lines = [
        "| set | scale | bicubic | EDSR (PSNR / SSIM) | RLFN (PSNR / SSIM) | RLFN - EDSR | RLFN published, paper's protocol |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scale in rlfn:
        e, r = edsr[(name, scale)], rlfn[(name, scale)]
        paper = PAPER_RLFN[name].get(scale)  # none at x3: the authors published x2 and x4
        lines.append(
            f"| {name} | x{scale} | {r.bicubic_psnr:.2f} / {r.bicubic_ssim:.4f} | {e.psnr:.2f} / {e.ssim:.4f} | "
            f"**{r.psnr:.2f}** / {r.ssim:.4f} | {r.psnr - e.psnr:+.2f} dB | {f'{paper:.2f}' if paper else '-'} |"
        )
    return "\n".join(lines)


def default_per_cpu(network: str, scales: list[int]) -> str:
    """The engine's precision rule (runtime.precision) for ``network`` per CPU family, from the manifest."""
    faithful = [s for s in scales if int8_is_faithful(s, runtime.models_dir(), "clean", network)]
    other = [s for s in scales if s not in faithful]
    here = "this CPU has native bf16" if runtime.cpu_has_bf16() else "this CPU has no native bf16"
    lines = []
    if faithful:
        lines.append(f"- x{', x'.join(map(str, faithful))}: **int8** on every CPU (the twin holds 0.05 dB).")
    if other:
        lines.append(
            f"- x{', x'.join(map(str, other))}: the int8 twin misses 0.05 dB or breaks the tiling's promise "
            "(its windows against one window, `tiled_vs_one_window` in the manifest), so **bf16** where the CPU runs it "
            "natively (AVX-512 bf16 or AMX: Intel Xeon Sapphire Rapids and later, AMD Zen 4 and later) and "
            f"**f32** elsewhere (AVX2 only, e.g. the AMD EPYC of earlier rounds); {here}."
        )
    return "\n".join(lines)


def rlfn_section(edsr: dict, rlfn: dict) -> list[str]:
    """The card's RLFN part, every table from measurements: this run's, the manifest's and the runs'."""
    scales = available_scales(runtime.models_dir(), "rlfn")
    defaults = ", ".join(f"x{s} {runtime.precision(s, 'clean', 'rlfn')}" for s in scales)
    return [
        f"## RLFN (issue 23): `rlfn_x{'`, `rlfn_x'.join(map(str, scales))}` and their twins",
        "",
        "RLFN (Kong et al., CVPR 2022 workshops, arXiv 2205.07514), written in `training/rlfn.py` from the paper, "
        "with the **authors' published weights** (bytedance/RLFN `model_zoo/rlfn_x{2,4}.pth`, Apache-2.0: "
        "`LICENSE-RLFN`, `NOTICE-RLFN`). The authors trained them on **DIV2K + Flickr2K** (research datasets "
        "whose own terms differ from the weights' licence), so an operator can judge; `UPSCALE_MODELS=edsr` "
        "leaves RLFN out. The engine runs the seam-free variant (attention map resized by a fixed x6, see "
        "docs/rlfn.md). Chosen with `--network rlfn` / `network=rlfn`.",
        "",
        "### Quality beside EDSR",
        "",
        f"Same protocol and engine as the table above, each network at the engine's default precision here "
        f"(RLFN: {defaults}; its border: "
        "zeros, the grid's extension reflected). The last column is the published weights in PyTorch f32 on "
        "the paper's protocol (no tiling, no border), for reference.",
        "",
        side_by_side(edsr, rlfn),
        "",
        "### Precision: the default per CPU family",
        "",
        default_per_cpu("rlfn", scales),
        "",
        "Measured by `training.export --evaluate` (PSNR in dB, difference to f32). The int8 twin keeps the first "
        "conv, every attention branch, the upsampler and the skip adds in float (`training/export.py`, "
        "`RLFN_FLOAT_OPS`). Speed of each precision on this CPU: docs/benchmarks.md, block `network-precision`; "
        "on the 2-core AMD EPYC (AVX2, load 12-15) of the earlier round, 1280x720 at x4 through the CLI: EDSR "
        "int8 206.6 / 154.0 s, RLFN f32 66.0 / 70.2 s.",
        "",
        precision_table("rlfn"),
        "",
        "### Compressed inputs (RLFN's JPEG-aware twins)",
        "",
        "As for EDSR above: the same decoded JPEG LR for bicubic, clean RLFN and its JPEG-aware twin.",
        "",
        jpeg_table("rlfn"),
        "",
        "### Trained here",
        "",
        training_table(training_facts("rlfn")),
        "",
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "datasets" / "benchmark")
    p.add_argument(
        "--precision", default=None, help="default: the engine's default for each scale on this CPU"
    )
    p.add_argument(
        "--notes",
        type=Path,
        default=ROOT / "training" / "model_card_notes.md",
        help="hand-written part of the card, appended as it is",
    )
    p.add_argument(
        "--jpeg-sets",
        default="",
        help="comma-separated benchmark sets to add to the JPEG tables first (e.g. Set14,B100; slow)",
    )
    args = p.parse_args(argv)
    if args.jpeg_sets:
        measure_jpeg_sets(args.benchmarks, args.jpeg_sets.split(","))
    precision = args.precision or "default: " + ", ".join(f"x{s} {runtime.precision(s)}" for s in SCALES)
    cells = measure(args.benchmarks, args.precision)
    rlfn_scales = tuple(available_scales(runtime.models_dir(), "rlfn"))
    rlfn_cells = measure(args.benchmarks, args.precision, "rlfn", rlfn_scales) if rlfn_scales else {}
    card = [
        "# Model card: EDSR-baseline x2, x3, x4",
        "",
        "EDSR-baseline (Lim et al., 2017: 16 residual blocks, 64 features, res_scale 1, DIV2K mean shift inside "
        "the network, pixels 0..255), trained by `training/train.py` in this repository and exported to OpenVINO "
        "IR by `training/export.py`: FP16-compressed weights (`edsr_baseline_xN`) and an NNCF int8 twin "
        "(`edsr_baseline_xN_int8`), the tail folded at export (the upsampler, the last convolution and the mean "
        "shift are linear: one 5x5 convolution and one pixel shuffle, exact beyond 2 pixels of a window's edge, "
        "which the tiling's overlap discards; see docs/engine.md). `manifest.json` lists every file with its "
        "sha256.",
        "",
        "## Training",
        "",
        "- Data: `shared/datasets/train` (T91, General100, BSD200, Kodak24, McMaster: 433 images); every 40th "
        "image (11) held out for validation and checkpoint choice. The benchmark sets are used only for the table "
        "below. LR images by MATLAB-compatible bicubic (`upscale_worker/engine/imresize.py`).",
        "- Recipe: the paper's: L1 loss, Adam (0.9, 0.999, 1e-8), lr 1e-4 with step halving, LR patches 48x48, "
        "batch 16, random flips and 90-degree rotations; x3 and x4 start from the trained x2 body.",
        "- Hardware: the table below says where each run trained. On a lent GPU the three scales train at once "
        "inside a fixed time box (`training/all_scales.sh`), the learning rate halving at fixed minutes; on the "
        "CPU, a run resumes in pieces from `latest.pt` and halves at fixed iterations.",
        "",
        training_table(training_facts()),
        "",
        f"## Quality (`python -m upscale_worker evaluate`, engine precision {precision})",
        "",
        "Mean PSNR (dB) / SSIM on Y (BT.601), border of `scale` pixels shaved, LR by MATLAB bicubic: the paper's "
        "protocol. *Way* = (ours - bicubic) / (paper - bicubic). First bar (issue 3): Set5 at least "
        "37.0 / 33.3 / 31.0 dB and every cell at least 65% of the way.",
        "",
        table(cells),
        "",
        "## Precision",
        "",
        "PSNR (dB, difference to f32) of each precision on Set5 and on the 11 held-out training images, measured "
        "by `training.export --evaluate`. The engine runs int8 where it stays within 0.05 dB of f32 on both (issue "
        "6's bar for a default, on Set5, and content Set5 lacks), else bf16 where the "
        "CPU has it. int8 is NNCF post-training quantisation of the convolutions in the residual body, calibrated "
        "on 64 training crops; the RGB-facing convolutions, the folded tail and every skip-connection add stay "
        "in float (chosen on training images, see `training/export.py`). bf16 is measured only where the "
        "exporting CPU has it.",
        "",
        precision_table(),
        "",
        "## Compressed inputs (JPEG-aware twins)",
        "",
        "Mean Y-PSNR (dB, gain over bicubic) with each LR saved by Pillow as a JPEG at the quality (4:2:0) and "
        "decoded; bicubic and both models start from the same decoded LR, each model at the engine's default "
        "precision (measured by `training.export --variant jpeg --evaluate`). `auto` runs the JPEG-aware model "
        f"below IJG-equivalent quality {JPEG_QUALITY_THRESHOLD}, chosen on the held-out training images "
        "(`python -m bench.jpeg_threshold`, table in docs/benchmarks.md).",
        "",
        jpeg_table(),
        "",
    ]
    if rlfn_cells:
        card += rlfn_section(cells, rlfn_cells)
    if args.notes.exists():
        card.append(args.notes.read_text())
    (ROOT / "models" / "README.md").write_text("\n".join(card))
    write_block(
        "model-card",
        f"Engine precision {precision}; details, training and the way to the paper's numbers "
        f"in [models/README.md](../models/README.md).\n\n{table(cells)}"
        + (
            f"\n\nRLFN beside EDSR (issue 23), each at its default precision:\n\n{side_by_side(cells, rlfn_cells)}"
            if rlfn_cells
            else ""
        ),
        DOCS / "models.md",
    )
    print(f"wrote {ROOT / 'models' / 'README.md'}")


if __name__ == "__main__":
    main()
