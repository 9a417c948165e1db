"""Train EDSR by the paper's recipe, in resumable pieces, on CUDA or the CPU.

    python -m training.train --data ../shared/datasets/train --scale 2 --run training/runs/x2 \
        --iterations 9000 --decay 6000,8000 --minutes 60

L1 loss, Adam (0.9, 0.999, 1e-8), lr 1e-4 halved at each --decay step, LR patches 48x48, batch 16,
flips and rotations, LR by MATLAB bicubic.

The JPEG-aware twin fine-tunes the clean weights on LR patches JPEG-compressed at random qualities
(4:2:0, patches on the 16-pixel grid) and picks its checkpoint on the held-out images compressed at a
few qualities:

    python -m training.train --data ../shared/datasets/train --scale 2 --run training/runs/x2-jpeg \
        --init-weights training/runs/x2/best.pt --jpeg 30-95 --iterations 6000 --decay 4000

RLFN (training/rlfn.py; ``--arch rlfn``, its seam-free ``--grid`` variant by default) fine-tunes the
authors' weights the same way (``--init-weights ../shared/weights/rlfn/rlfn_x4.pth``).

A run folder holds ``last.pt`` (model, optimizer, step) for resuming, ``best.pt`` (weights with the best
validation PSNR) and ``log.csv``. Validation uses images held out of the training folder; benchmark sets are
never seen here.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training import rlfn
from training.data import (
    JpegDegradation,
    PatchSampler,
    jpeg_roundtrip,
    list_images,
    load_pair,
    split_validation,
)
from training.edsr import EDSR
from training.rlfn import RLFN
from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.metrics import psnr_y


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data", type=Path, required=True, help="folder of training images (searched recursively)"
    )
    p.add_argument("--scale", type=int, choices=(2, 3, 4), required=True)
    p.add_argument("--run", type=Path, required=True, help="run folder: checkpoints and log")
    p.add_argument("--arch", choices=("edsr", "rlfn"), default="edsr", help="the network (training/*.py)")
    p.add_argument("--variant", choices=("baseline", "full"), default="baseline", help="EDSR's size")
    p.add_argument(
        "--grid",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="rlfn: ESA's map resized by a fixed x6 (the engine's seam-free variant, see training/rlfn.py)",
    )
    p.add_argument("--init-from", type=Path, help="weights whose body starts this model (x2 -> x3/x4)")
    p.add_argument("--init-weights", type=Path, help="whole weights of the same scale to fine-tune from")
    p.add_argument("--jpeg", help="JPEG-compress LR patches at a quality drawn from this range, e.g. 30-95")
    p.add_argument("--jpeg-clean", type=float, default=0.1, help="share of LR patches left uncompressed")
    p.add_argument(
        "--val-jpeg",
        default="50,75,90",
        help="with --jpeg: qualities at which the held-out images are compressed for validation",
    )
    p.add_argument("--iterations", type=int, default=300_000, help="total iterations of the whole run")
    p.add_argument(
        "--minutes", type=float, default=0, help="stop this piece after so many minutes (0: never)"
    )
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--decay", default="200000", help="comma-separated iterations where lr halves")
    p.add_argument(
        "--decay-minutes",
        default="",
        help="comma-separated minutes of this piece where lr also halves (fits a schedule to a time box)",
    )
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch side")
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-crop", type=int, default=256, help="HR centre crop side for validation (0: whole)")
    p.add_argument("--checkpoint-minutes", type=float, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: on CUDA and on CPUs with native bf16 only)",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-holdout", type=int, default=40, help="hold out every N-th training image")
    return p.parse_args(argv)


def native_bf16(device: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on CUDA, and on a CPU whose flags include avx512_bf16 or amx_bf16 (torch's own check where
    /proc/cpuinfo cannot be read). Elsewhere bf16 is emulated, far slower than f32, so it stays off."""
    if device.startswith("cuda"):
        return True
    try:
        return bool(set(cpuinfo.read_text().split()) & {"avx512_bf16", "amx_bf16"})
    except OSError:
        checks = [
            getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        ]
        return any(check() for check in checks if check)


def centre_crop(img: np.ndarray, side: int, scale: int) -> np.ndarray:
    if side <= 0:
        return img
    side -= side % scale
    h, w = img.shape[:2]
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return img[y : y + side, x : x + side]


def validation_pairs(
    paths: list[Path], args: argparse.Namespace, cache: Path
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) pairs of the held-out images' centre crops; with --jpeg each LR once per --val-jpeg
    quality, compressed whole as an uploaded file would be."""
    qualities = [int(q) for q in args.val_jpeg.split(",") if q] if args.jpeg else [0]
    pairs = []
    for path in paths:
        hr = centre_crop(load_pair(path, args.scale, cache)[1], args.val_crop, args.scale)
        lr = imresize(hr, 1 / args.scale)
        pairs += [(jpeg_roundtrip(lr, q) if q else lr, hr) for q in qualities]
    return pairs


def to_tensor(img: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None].to(device)


def device_name(device: str) -> str:
    """What the model card says this piece trained on."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return (
        f"{cpu_model() or platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
    )


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo ('' where there is none): the model card names the machine."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def to_device(batch: np.ndarray, device: str) -> torch.Tensor:
    """A copy from pinned memory does not wait for the GPU, so the next batch is cut while it computes."""
    tensor = torch.from_numpy(batch)
    if device.startswith("cuda"):
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


@torch.inference_mode()
def validate(model: nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int, device: str) -> float:
    model.eval()
    scores = []
    for lr, hr in pairs:
        sr = model(to_tensor(lr, device)).clamp(0, 255).round()[0].permute(1, 2, 0).byte().cpu().numpy()
        scores.append(psnr_y(sr, hr, scale))
    model.train()
    return float(np.mean(scores))


class Run:
    """The run folder: resumable state, best weights and the log."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.last, self.log = folder / "last.pt", folder / "log.csv"
        # Model-only weights (a few MB, committed): the latest, to resume on another machine, and the best.
        self.latest, self.best = folder / "latest.pt", folder / "best.pt"
        self.meta = folder / "meta.json"

    def load_meta(self) -> dict:
        return json.loads(self.meta.read_text()) if self.meta.exists() else {}

    def save(self, model: nn.Module, opt: torch.optim.Optimizer, meta: dict) -> None:
        state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
        tmp = self.last.with_suffix(".tmp")
        torch.save({"model": state, "optimizer": opt.state_dict(), "meta": meta}, tmp)
        tmp.replace(self.last)
        self._save_weights(state, self.latest)
        self.write_meta(meta)

    def write_meta(self, meta: dict) -> None:
        self.meta.write_text(json.dumps(meta, indent=2) + "\n")

    def save_best(self, model: nn.Module) -> None:
        self._save_weights({k: v.detach().float().cpu() for k, v in model.state_dict().items()}, self.best)

    @staticmethod
    def _save_weights(state: dict, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def append_log(self, row: dict) -> None:
        new = not self.log.exists()
        with self.log.open("a") as f:
            if new:
                f.write(",".join(row) + "\n")
            f.write(",".join(str(v) for v in row.values()) + "\n")


def network(args: argparse.Namespace) -> nn.Module:
    if args.arch == "rlfn":
        return RLFN(args.scale, grid=args.grid)
    return EDSR.variant(args.variant, args.scale)


def build(args: argparse.Namespace, run: Run) -> tuple[nn.Module, torch.optim.Optimizer, dict]:
    model = network(args)
    opt = torch.optim.Adam(
        (p for p in model.parameters() if p.requires_grad), lr=args.lr, betas=(0.9, 0.999), eps=1e-8
    )
    meta = {
        "scale": args.scale,
        "variant": args.variant if args.arch == "edsr" else f"rlfn{'-grid' if args.grid else ''}",
        "iteration": 0,
        "train_seconds": 0.0,
        "best_val_psnr": 0.0,
        "best_iteration": 0,
        "device": args.device,
    }
    if run.last.exists():
        saved = torch.load(run.last, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        meta.update(saved["meta"])
        print(f"resumed {run.last} at iteration {meta['iteration']}", flush=True)
    elif run.latest.exists():  # a committed run without optimizer state: resume the weights
        model.load_state_dict(torch.load(run.latest, map_location="cpu", weights_only=True))
        meta.update(run.load_meta())
        print(f"resumed weights {run.latest} at iteration {meta['iteration']} (fresh optimizer)", flush=True)
    elif args.init_weights:
        model.load_state_dict(torch.load(args.init_weights, map_location="cpu", weights_only=True))
        meta["init_weights"] = str(args.init_weights)
        print(f"fine-tuning from {args.init_weights}", flush=True)
    elif args.init_from:
        n = model.load_body_from(torch.load(args.init_from, map_location="cpu", weights_only=True))
        meta["init_from"] = str(args.init_from)
        print(f"initialised {n} tensors from {args.init_from}", flush=True)
    model.to(args.device, memory_format=torch.channels_last)
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and v.dim() > 0:
                state[k] = v.to(args.device)
    return model, opt, meta


# Patches the least-squares start of an RLFN upsampler is fitted on (about 55k LR pixels at 48x48: 0.2 GB).
UPSAMPLER_FIT_PATCHES = 24


def start_upsampler(model: nn.Module, sampler: PatchSampler, args: argparse.Namespace, meta: dict) -> None:
    """RLFN from another scale's body (--init-from): its new upsampler starts as the least-squares fit on
    training patches (rlfn.fit_upsampler) rather than at random."""
    lr_np, hr_np = sampler.batch(UPSAMPLER_FIT_PATCHES)
    model.to(memory_format=torch.contiguous_format)
    rms = rlfn.fit_upsampler(model.cpu(), torch.from_numpy(lr_np), torch.from_numpy(hr_np))
    model.to(args.device, memory_format=torch.channels_last)
    meta["upsampler_fit"] = f"least squares on {UPSAMPLER_FIT_PATCHES} training patches, RMS {rms:.2f} levels"
    print(meta["upsampler_fit"], flush=True)


def learning_rate(args: argparse.Namespace, iteration: int, minutes: float = 0.0) -> float:
    steps = [int(s) for s in args.decay.split(",") if s]
    at_minutes = [float(m) for m in args.decay_minutes.split(",") if m]
    return args.lr * 0.5 ** (sum(iteration >= s for s in steps) + sum(minutes >= m for m in at_minutes))


def validate_and_log(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    run: Run,
    meta: dict,
    val_pairs: list[tuple[np.ndarray, np.ndarray]],
    losses: list[torch.Tensor],
    args: argparse.Namespace,
) -> None:
    """Validation PSNR on the held-out images; a new best is saved at once with the meta that names it."""
    val = validate(model, val_pairs, args.scale, args.device)
    if val > meta["best_val_psnr"]:
        meta["best_val_psnr"], meta["best_iteration"] = val, meta["iteration"]
        run.save_best(model)
        run.write_meta(meta)
    row = {
        "iteration": meta["iteration"],
        "loss": round(torch.stack(losses).mean().item(), 4),
        "val_psnr": round(val, 3),
        "lr": opt.param_groups[0]["lr"],
        "train_seconds": round(meta["train_seconds"], 1),
    }
    run.append_log(row)
    print(row, flush=True)
    losses.clear()


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # fixed patch shapes: let cuDNN pick its fastest convolutions
    run = Run(args.run)
    cache = args.run.parent / ".lr-cache"
    train_paths, val_paths = split_validation(list_images(args.data), args.val_holdout)
    print(f"{len(train_paths)} training images, {len(val_paths)} held out for validation", flush=True)
    val_pairs = validation_pairs(val_paths, args, cache)
    if args.bf16 is None:
        args.bf16 = native_bf16(args.device)
    degradation = JpegDegradation.parse(args.jpeg, args.jpeg_clean) if args.jpeg else None
    model, opt, meta = build(args, run)
    meta.update(
        planned_iterations=args.iterations,
        lr=args.lr,
        decay=args.decay,
        batch=args.batch,
        patch=args.patch,
        device=args.device,
        device_name=device_name(args.device),
        bf16=args.bf16,
    )
    if degradation:
        meta.update(jpeg=args.jpeg, jpeg_clean=args.jpeg_clean, val_jpeg=args.val_jpeg)
    meta.pop("decay_minutes", None)
    if args.decay_minutes:
        meta["decay_minutes"] = args.decay_minutes
    sampler = PatchSampler(
        [load_pair(p, args.scale, cache) for p in train_paths],
        args.scale,
        args.patch,
        seed=args.seed + meta["iteration"],
        degradation=degradation,
    )
    if args.arch == "rlfn" and args.init_from and meta["iteration"] == 0 and "upsampler_fit" not in meta:
        start_upsampler(model, sampler, args, meta)
    autocast = torch.autocast(device_type=args.device.split(":")[0], dtype=torch.bfloat16, enabled=args.bf16)
    loss_fn = nn.L1Loss()
    started = time.monotonic()
    last_save = started
    piece_start_seconds = meta["train_seconds"]
    losses: list[torch.Tensor] = []  # kept on the device: a .item() per step would stall a GPU
    stop_requested = []
    # SIGTERM/SIGINT end the piece cleanly: the loop finishes its step and the checkpoint is saved.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop_requested.append(True))
    while meta["iteration"] < args.iterations and not stop_requested:
        if args.minutes and time.monotonic() - started > args.minutes * 60:
            break
        for group in opt.param_groups:
            group["lr"] = learning_rate(args, meta["iteration"], (time.monotonic() - started) / 60)
        lr_np, hr_np = sampler.batch(args.batch)
        lr_t = to_device(lr_np, args.device).contiguous(memory_format=torch.channels_last)
        hr_t = to_device(hr_np, args.device)
        with autocast:
            loss = loss_fn(model(lr_t).float(), hr_t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        meta["iteration"] += 1
        meta["train_seconds"] = piece_start_seconds + time.monotonic() - started
        if meta["iteration"] % args.val_every == 0 or meta["iteration"] == args.iterations:
            validate_and_log(model, opt, run, meta, val_pairs, losses, args)
        if time.monotonic() - last_save > args.checkpoint_minutes * 60:
            run.save(model, opt, meta)
            last_save = time.monotonic()
    if losses:  # the piece ended between validations: its last weights may be the best
        validate_and_log(model, opt, run, meta, val_pairs, losses, args)
    run.save(model, opt, meta)
    print(
        f"stopped at iteration {meta['iteration']}: best validation PSNR {meta['best_val_psnr']:.3f} dB "
        f"at {meta['best_iteration']}",
        flush=True,
    )
    return meta


if __name__ == "__main__":
    main()
