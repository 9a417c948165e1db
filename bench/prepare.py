"""The models the speed benchmarks run, made through the real export path into bench/out (git-ignored).

    python -m bench.prepare            # idempotent: reuses bench/out/models when its sources are unchanged

- x2: a snapshot of the background training's ``training/runs/x2/best.pt`` (its iteration is recorded), so
  that PyTorch, ONNX Runtime, OpenCV and OpenVINO all run exactly the same weights.
- x3, x4: EDSR baseline with the x2 snapshot's body and a random upsampler (the paper's x2 -> x4
  initialisation, untrained): speed does not depend on the weights, PSNR does, so these are never scored.
Each scale goes through ``training.export`` (FP16 IR + NNCF int8 IR, manifest) and ``torch.onnx.export``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from bench.common import OUT, ROOT

MODELS = OUT / "models"
ONNX = OUT / "onnx"
CKPT = OUT / "checkpoints"
RUN = ROOT / "training" / "runs" / "x2"
STAMP = MODELS / "prepared.json"
SCALES = (2, 3, 4)
CALIBRATION_CROPS = 32  # int8 speed does not depend on calibration quality; the shipped int8 used 57


def info() -> dict:
    return json.loads(STAMP.read_text())


def checkpoint(scale: int) -> Path:
    return CKPT / f"edsr_baseline_x{scale}.pt"


def onnx_path(scale: int) -> Path:
    return ONNX / f"edsr_baseline_x{scale}.onnx"


def torch_model(scale: int):
    from training.export import load_checkpoint

    return load_checkpoint(checkpoint(scale))


def _snapshot() -> dict:
    import torch

    from training.edsr import EDSR

    CKPT.mkdir(parents=True, exist_ok=True)
    # The trainer writes best.pt at validation and meta.json (best_iteration) at its next save: take the
    # weights once meta.json is newer than them and they did not change while read, else the label is unknown.
    best, meta_path = RUN / "best.pt", RUN / "meta.json"
    for _ in range(120):
        stamp = best.stat().st_mtime_ns
        state = torch.load(best, map_location="cpu", weights_only=True)
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        if best.stat().st_mtime_ns == stamp and meta_path.exists() and meta_path.stat().st_mtime_ns >= stamp:
            break
        time.sleep(1)
    else:
        meta = {}
    state = state.get("model", state)
    torch.save(state, checkpoint(2))
    for scale in (3, 4):
        torch.manual_seed(scale)
        model = EDSR.baseline(scale)
        model.load_body_from(state)
        torch.save(model.state_dict(), checkpoint(scale))
    return {"x2_iteration": meta.get("best_iteration"), "x2_validation_psnr": meta.get("best_val_psnr")}


def _export_onnx(scale: int) -> None:
    import torch

    ONNX.mkdir(parents=True, exist_ok=True)
    model = torch_model(scale)
    example = torch.rand(1, 3, 64, 64) * 255
    torch.onnx.export(
        model,
        (example,),
        str(onnx_path(scale)),
        input_names=["lr"],
        output_names=["sr"],
        dynamic_axes={"lr": {2: "h", 3: "w"}, "sr": {2: "H", 3: "W"}},
        opset_version=17,
        dynamo=False,
    )


def prepare(force: bool = False) -> dict:
    from training import export

    if STAMP.exists() and not force and all(onnx_path(s).exists() for s in SCALES):
        return info()
    shutil.rmtree(MODELS, ignore_errors=True)
    facts = _snapshot()
    for scale in SCALES:
        data = (
            f"bench snapshot of training/runs/x2/best.pt (iteration {facts['x2_iteration']})"
            if scale == 2
            else "untrained upsampler on the x2 snapshot's body: for speed only"
        )
        export.main(
            [
                "--weights",
                str(checkpoint(scale)),
                "--out",
                str(MODELS),
                "--training-data",
                data,
                "--calibration-crops",
                str(CALIBRATION_CROPS),
            ]
        )
        _export_onnx(scale)
    STAMP.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


if __name__ == "__main__":
    print(prepare(force="--force" in sys.argv))
