"""Quantisation-aware fine-tuning of RLFN's int8 twin with NNCF's PyTorch flow (issue 23), on the CPU.

    python -m training.qat --scale 4 --run training/runs/rlfn-x4-qat --iterations 1500 --minutes 60
    python -m training.qat --scale 4 --run training/runs/rlfn-x4-qat --export --evaluate ../shared/datasets/benchmark/Set5

The flow is NNCF's documented one for PyTorch ("Quantization-aware Training (QAT) with PyTorch", OpenVINO's
model optimisation guide): ``nncf.quantize`` puts fake quantisers into the float model (post-training
calibration on LR crops of training images, MIXED preset, the same float layers as the post-training twin
of training/export.py: torch_float_scope), the returned model is fine-tuned with a small learning rate like
any torch model (the quantisers' ranges learn too), and ``ov.convert_model`` turns it into an IR whose
FakeQuantize nodes OpenVINO runs as int8; ``ov.save_model`` stores the quantised weights as int8.

The loss is distillation: L1 between the twin's output and its float model's (the engine's grid variant of
the same weights) on 48x48 LR training patches, batch 16, so the twin stays faithful to the float model
rather than drifting towards the training set; ``--hr-weight`` adds L1 to the HR patch. Adam, lr 2e-5.
Every ``--val-every`` iterations the twin is converted to OpenVINO and run on the held-out training images
(every 40th, whole, cut to the 6-pixel grid times the scale; benchmark sets are never seen here): the
checkpoint with the best mean Y-PSNR there is ``best.pt``.

A run folder holds ``last.pt`` (weights with the quantisers' ranges, optimizer, meta; not committed),
``latest.pt`` and ``best.pt`` (the twin's state dict, a few MB: committed), ``meta.json`` and ``log.csv``.
A state dict is read back by quantising the float model again (its graph decides where the quantisers sit)
and loading the state over it. ``--export`` writes ``best.pt`` as ``models/rlfn_x{scale}_int8`` with its
manifest entry (as training/export.py writes entries), measured through the engine with ``--evaluate``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training import export, rlfn
from training.data import PatchSampler, list_images, load_pair, split_validation
from training.train import Run, cpu_model

# NNCF compiles its fake-quantise kernels on first use; on 2 busy cores that takes minutes, past its default
# 60-second limit.
os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", "0")

# RLFN_FLOAT_OPS (OpenVINO node names) in NNCF's torch node names (module path with "/", then the function
# and its call index, e.g. block_1/esa/conv1/conv2d/0): the first conv, the attention branch's convs, the
# upsampler and every add. As in the OpenVINO twin, the attention's sigmoid and product stay quantised.
TORCH_FLOAT_OPS = [r"conv_1/.*", r".*/esa/conv[^/]*/.*", r"upsampler/.*", r"(.*/)?add/\d+"]


def torch_float_scope(scale: int) -> list[str]:
    """IgnoredScope patterns of the float layers at ``scale`` in torch names: TORCH_FLOAT_OPS and the convs
    export.RLFN_ACCURACY_CONTROL keeps in float for that scale (block_1.c5 -> block_1/c5/...)."""
    searched = export.RLFN_ACCURACY_CONTROL.get(scale, [])
    return TORCH_FLOAT_OPS + [name.replace(".", "/") + "/.*" for name in searched]


def float_model(scale: int, weights: Path | None = None) -> rlfn.RLFN:
    """The f32 model the twin distils from: the authors' weights (or ``weights``) in the engine's grid variant."""
    path = weights or rlfn.PUBLISHED / f"rlfn_x{scale}.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = rlfn.from_state_dict(state.get("model", state), grid=True).eval()
    if model.scale != scale:
        raise SystemExit(f"{path} is x{model.scale}, not x{scale}")
    return model


def quantize(model: nn.Module, crops: list[np.ndarray], scale: int) -> nn.Module:
    """NNCF's post-training quantisation of a copy of ``model`` (the start of QAT): fake quantisers with
    ranges calibrated on ``crops`` (1 x 3 x S x S float32, 0..255, LR training crops), MIXED preset
    (symmetric weights, asymmetric activations), torch_float_scope(scale) left in float."""
    import nncf

    return nncf.quantize(
        model,
        nncf.Dataset([torch.from_numpy(c) for c in crops]),
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(crops),
        ignored_scope=nncf.IgnoredScope(patterns=torch_float_scope(scale)),
    )


def twin_from_state(model: nn.Module, state: dict, scale: int) -> nn.Module:
    """A twin saved as a state dict: quantisers placed by quantising ``model`` on one small crop, then every
    tensor (weights, biases, quantiser ranges) replaced by the saved ones."""
    crop = np.full((1, 3, 2 * rlfn.MIN_WINDOW, 2 * rlfn.MIN_WINDOW), 128, np.float32)
    twin = quantize(model, [crop], scale)
    twin.load_state_dict(state)
    return twin


def to_openvino(twin: nn.Module):
    """The twin as the engine's IR: 1 x 3 x H x W input named lr (dynamic H, W), output sr, FakeQuantize nodes
    on the quantised activations and weights (int8 once saved by ov.save_model)."""
    was_training = twin.training
    twin.eval()
    with torch.no_grad():
        ov_model = export.to_openvino(twin)
    twin.train(was_training)
    return ov_model


def openvino_psnr(ov_model, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int, threads: int) -> float:
    """Mean Y-PSNR (dB) of an OpenVINO model on ``pairs`` (export.held_out_pairs), compiled with ``threads`` and
    the float type the engine gives an int8 model's float layers on this CPU (bf16 where native): the checkpoint
    is chosen as it will run."""
    import openvino as ov

    from upscale_worker.engine import runtime

    config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": runtime.inference_type("int8")}
    compiled = ov.Core().compile_model(ov_model, "CPU", config)
    return float(np.mean(export.openvino_scores(compiled, pairs, scale)))


def step(
    twin: nn.Module,
    teacher: nn.Module,
    opt: torch.optim.Optimizer,
    lr: torch.Tensor,
    hr: torch.Tensor,
    hr_weight: float = 0.0,
) -> float:
    """One optimizer step on a batch (``lr``: N x 3 x h x w, ``hr``: N x 3 x sh x sw, float 0..255): L1 of the
    twin's output to the float model's (distillation), plus ``hr_weight`` times L1 to ``hr``. Returns the
    loss in grey levels."""
    with torch.no_grad():
        target = teacher(lr)
    out = twin(lr)
    loss = F.l1_loss(out, target)
    if hr_weight:
        loss = loss + hr_weight * F.l1_loss(out, hr)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, choices=rlfn.PUBLISHED_SCALES, required=True)
    p.add_argument("--run", type=Path, required=True, help="run folder: checkpoints and log")
    p.add_argument("--weights", type=Path, help="the float model (default: the authors' rlfn_x{scale}.pth)")
    p.add_argument("--data", type=Path, default=export.TRAIN_DIR, help="training images (never a benchmark)")
    p.add_argument("--iterations", type=int, default=1500, help="total iterations of the whole run")
    p.add_argument(
        "--minutes", type=float, default=0, help="stop this piece after so many minutes (0: never)"
    )
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument(
        "--range-lr", type=float, default=1e-3, help="quantiser ranges' learning rate, relative to each range"
    )
    p.add_argument(
        "--hr-weight", type=float, default=0.0, help="weight of L1 to the HR patch beside distillation"
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch side")
    p.add_argument("--val-every", type=int, default=100)
    p.add_argument("--calibration-crops", type=int, default=32, help="LR crops of 96x96 for the start")
    p.add_argument("--checkpoint-minutes", type=float, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", action="store_true", help="write best.pt as models/rlfn_x{scale}_int8")
    p.add_argument("--out", type=Path, default=export.REPO_ROOT / "models")
    p.add_argument("--evaluate", type=Path, action="append", default=[], help="with --export: measure on")
    return p.parse_args(argv)


def param_groups(twin: nn.Module, lr: float, range_lr: float) -> list[dict]:
    """Adam's groups: the network's weights and biases at ``lr``, and each quantiser's trainable ranges (NNCF's
    input_low / input_range of an activation, scale of a weight) at ``range_lr`` times the range's own mean
    magnitude. One learning rate for all moves nothing: an activation range of 300 levels and a weight scale of
    0.2 want steps four decades apart (measured: at 3e-5 the ranges moved 0.007 in 200 iterations)."""
    weights, groups = [], []
    for name, param in twin.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("__nncf_hooks"):
            groups.append(
                {"params": [param], "lr": range_lr * float(param.detach().abs().mean().clamp(min=1e-3))}
            )
        else:
            weights.append(param)
    return [{"params": weights, "lr": lr}, *groups]


def build(
    args: argparse.Namespace, run: Run, teacher: nn.Module
) -> tuple[nn.Module, torch.optim.Optimizer, dict]:
    """The twin and its optimizer: resumed from last.pt (or latest.pt), else quantised afresh."""
    meta = {
        "scale": args.scale,
        "iteration": 0,
        "train_seconds": 0.0,
        "best_val_psnr": 0.0,
        "best_iteration": 0,
    }
    if run.last.exists() or run.latest.exists():
        saved = torch.load(
            run.last if run.last.exists() else run.latest, map_location="cpu", weights_only=True
        )
        twin = twin_from_state(teacher, saved.get("model", saved), args.scale)
        meta.update(run.load_meta())
    else:
        crops = export.calibration_crops(args.data, args.scale, args.calibration_crops, 96, args.seed)
        twin = quantize(teacher, crops, args.scale)
        meta["calibration"] = f"{len(crops)} LR crops of 96x96 from {args.data.name} (seed {args.seed})"
    opt = torch.optim.Adam(param_groups(twin, args.lr, args.range_lr))
    if run.last.exists():
        opt.load_state_dict(saved["optimizer"])
        meta.update(saved["meta"])
        print(f"resumed {run.last} at iteration {meta['iteration']}", flush=True)
    elif run.latest.exists():
        print(f"resumed weights {run.latest} at iteration {meta['iteration']} (fresh optimizer)", flush=True)
    return twin, opt, meta


def validate_and_log(twin, run, meta, pairs, losses, args) -> None:
    val = openvino_psnr(to_openvino(twin), pairs, args.scale, args.threads)
    if val > meta["best_val_psnr"]:
        meta["best_val_psnr"], meta["best_iteration"] = val, meta["iteration"]
        run.save_best(twin)
        run.write_meta(meta)
    row = {
        "iteration": meta["iteration"],
        "loss": round(float(np.mean(losses)), 4) if losses else "",
        "val_psnr": round(val, 3),
        "val_psnr_f32": round(meta["val_psnr_f32"], 3),
        "train_seconds": round(meta["train_seconds"], 1),
    }
    run.append_log(row)
    print(row, flush=True)
    losses.clear()


def train(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = Run(args.run)
    teacher = float_model(args.scale, args.weights)
    for p in teacher.parameters():
        p.requires_grad_(False)
    train_paths = split_validation(list_images(args.data))[0]
    pairs = export.held_out_pairs(args.data, args.scale)
    twin, opt, meta = build(args, run, teacher)
    if "val_psnr_f32" not in meta:
        meta["val_psnr_f32"] = openvino_psnr(export.to_openvino(teacher), pairs, args.scale, args.threads)
        print(f"held-out f32: {meta['val_psnr_f32']:.3f} dB", flush=True)
    meta.update(
        planned_iterations=args.iterations,
        lr=args.lr,
        range_lr=args.range_lr,
        hr_weight=args.hr_weight,
        batch=args.batch,
        patch=args.patch,
        float_scope=torch_float_scope(args.scale),
        device_name=f"{cpu_model() or 'CPU'}, {args.threads} CPU threads",
    )
    if meta["iteration"] == 0 and not run.log.exists():
        validate_and_log(twin, run, meta, pairs, [], args)  # the post-training start, for comparison
    sampler = PatchSampler(
        [load_pair(p, args.scale, args.run.parent / ".lr-cache") for p in train_paths],
        args.scale,
        args.patch,
        seed=args.seed + meta["iteration"],
    )
    started = last_save = time.monotonic()
    piece_start_seconds = meta["train_seconds"]
    losses: list[float] = []
    stop_requested = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_requested.append(True))
    twin.train()
    while meta["iteration"] < args.iterations and not stop_requested:
        if args.minutes and time.monotonic() - started > args.minutes * 60:
            break
        lr_np, hr_np = sampler.batch(args.batch)
        loss = step(twin, teacher, opt, torch.from_numpy(lr_np), torch.from_numpy(hr_np), args.hr_weight)
        losses.append(loss)
        meta["iteration"] += 1
        meta["train_seconds"] = piece_start_seconds + time.monotonic() - started
        if meta["iteration"] % args.val_every == 0 or meta["iteration"] == args.iterations:
            validate_and_log(twin, run, meta, pairs, losses, args)
        if time.monotonic() - last_save > args.checkpoint_minutes * 60:
            run.save(twin, opt, meta)
            last_save = time.monotonic()
    if losses:
        validate_and_log(twin, run, meta, pairs, losses, args)
    run.save(twin, opt, meta)
    print(
        f"stopped at iteration {meta['iteration']}: best held-out {meta['best_val_psnr']:.3f} dB at "
        f"{meta['best_iteration']} (f32 {meta['val_psnr_f32']:.3f})",
        flush=True,
    )
    return meta


def export_best(args: argparse.Namespace) -> dict:
    """best.pt as models/rlfn_x{scale}_int8.{xml,bin} and its manifest entry (export.export's fields, the
    calibration and the fine-tuning said), measured through the engine on --evaluate and the held-out images."""
    torch.set_num_threads(args.threads)
    teacher = float_model(args.scale, args.weights)
    best = args.run / "best.pt"
    twin = twin_from_state(teacher, torch.load(best, map_location="cpu", weights_only=True), args.scale)
    meta = json.loads((args.run / "meta.json").read_text())
    name, network = export.describe(teacher, jpeg=False)
    weights = args.weights or rlfn.PUBLISHED / f"rlfn_x{args.scale}.pth"
    entry = {
        "name": f"{name}_int8",
        "weights": "int8",
        **network,
        "variant": "clean",
        "scale": args.scale,
        "parameters": sum(p.numel() for p in teacher.parameters()),
        "training_data": export.RLFN_DATA,
        "checkpoint": weights.name,
        "checkpoint_sha256": export.sha256(weights),
        "calibration": meta.get("calibration", ""),
        "quantisation_aware_training": {
            "recipe": "training/qat.py: NNCF quantize (MIXED) then fine-tuned, L1 to the f32 model's output",
            "checkpoint": str(best.resolve().relative_to(export.REPO_ROOT)),
            "checkpoint_sha256": export.sha256(best),
            "iteration": meta["best_iteration"],
            "validation_psnr": round(meta["best_val_psnr"], 3),
            "validation_psnr_f32": round(meta["val_psnr_f32"], 3),
        },
        **export.save_ir(to_openvino(twin), args.out, f"{name}_int8"),
    }
    export.add_entry(args.out, entry)
    if args.evaluate:
        with export.held_out_images(args.data) as held_out:
            entry["psnr"] = export.measure(
                args.out, args.scale, ["int8"], [*args.evaluate, *held_out], network="rlfn"
            )
        entry["tiled_vs_one_window"] = export.tiled_vs_one_window(
            args.out, args.scale, "rlfn", "clean", args.data
        )
        export.add_entry(args.out, entry)
    print(f"wrote {args.out / entry['files']['xml']}", flush=True)
    return entry


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if "benchmark" in args.data.resolve().parts:
        raise SystemExit("QAT trains and validates on training images, never a benchmark set")
    return export_best(args) if args.export else train(args)


if __name__ == "__main__":
    main()
