"""The models the benchmarks run: the shipped IR in models/, and the very same weights for the peers.

    python -m bench.prepare            # idempotent: reuses bench/out when its sources are unchanged

- Each scale: a copy of ``training/runs/xN/best.pt`` (its iteration is recorded), so that PyTorch,
  ONNX Runtime, OpenCV and OpenVINO all run exactly the same weights.
The IR must have been exported from those very checkpoints (the manifest records their sha256), and each
one goes through ``torch.onnx.export`` into bench/out/onnx for ONNX Runtime and OpenCV.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import OUT, ROOT

MODELS = ROOT / "models"
ONNX = OUT / "onnx"
CKPT = OUT / "checkpoints"
RUNS = ROOT / "training" / "runs"
STAMP = OUT / "prepared.json"
SCALES = (2, 3, 4)


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
    """Copy each scale's best training weights, so every runner reads the very same checkpoint."""
    import torch

    CKPT.mkdir(parents=True, exist_ok=True)
    facts = {}
    for scale in SCALES:
        run = RUNS / f"x{scale}"
        state = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
        torch.save(state.get("model", state), checkpoint(scale))
        meta = json.loads((run / "meta.json").read_text())
        facts[f"x{scale}_iteration"] = meta.get("best_iteration")
    facts["sources"] = sources()
    return facts


def sources() -> dict:
    from upscale_worker.engine.models import sha256

    return {f"x{scale}": sha256(RUNS / f"x{scale}" / "best.pt") for scale in SCALES}


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
    fresh = STAMP.exists() and not force and all(onnx_path(s).exists() for s in SCALES)
    if fresh and info().get("sources") == sources():
        return info()
    facts = _snapshot()
    for scale in SCALES:
        _check_shipped(scale, facts["sources"][f"x{scale}"])
        _export_onnx(scale)
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.write_text(json.dumps(facts, indent=2) + "\n")
    return facts


def _check_shipped(scale: int, checkpoint_sha: str) -> None:
    from upscale_worker.engine.models import network_of, read_manifest, variant_of

    shipped = {
        e.get("checkpoint_sha256")
        for e in read_manifest(MODELS)["models"]
        if e["scale"] == scale and variant_of(e) == "clean" and network_of(e) == "edsr"
    }  # the JPEG-aware twins have their own runs; RLFN's IR comes from the authors' weights, not a run here
    if shipped != {checkpoint_sha}:
        raise SystemExit(
            f"models/ x{scale} was not exported from training/runs/x{scale}/best.pt: run "
            f"python -m training.export --weights training/runs/x{scale}/best.pt --scale {scale} --evaluate ..."
        )


if __name__ == "__main__":
    print(prepare(force="--force" in sys.argv))
