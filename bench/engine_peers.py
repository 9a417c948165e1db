"""Engine vs peers: the same EDSR weights and images, one process, the same thread count.

    python -m bench.engine_peers [--sizes 256,512] [--scales 2,4] [--runners ...] [--no-psnr]

Rows: our engine (``upscale_array``: tiles, overlap, pixel conversion) at f32, bf16 and int8; one untiled
OpenVINO inference of the same IR at each precision; PyTorch eager f32 and bf16 autocast, ONNX Runtime
(CPU provider) and OpenCV DNN (``cv2.dnn.readNetFromONNX``) on the ONNX of the same checkpoint. Peers are
timed tensor in -> tensor out (their best case); the engine row includes everything between arrays.
PSNR: Set5 x2 (EDSR paper protocol, upscale_worker.engine.metrics) of each runner on the same weights.
RLFN rows (issue 23): the same images through the same engine call with ``Options(network="rlfn")``, from
the shipped RLFN IR (the authors' weights), in the same run; their ratio is against the same (EDSR) peers,
and a note compares each network's default precision cell by cell.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import prepare
from bench.common import (
    BENCHMARK_SETS,
    LOADS,
    fmt,
    markdown_table,
    publish,
    threads,
    time_call,
    training_paused,
)
from upscale_worker.engine import config as engine_config

Runner = Callable[[np.ndarray], np.ndarray]  # float32 1x3xHxW 0..255 -> 1x3x(sH)x(sW)
PEERS = ["torch-f32", "torch-bf16", "onnxruntime", "opencv-dnn"]
OURS = ["engine-f32", "engine-bf16", "engine-int8", "openvino-f32", "openvino-bf16", "openvino-int8"]
RLFN = ["rlfn-engine-f32", "rlfn-engine-bf16", "rlfn-engine-int8"]  # the same engine, the other network
LABELS = {
    "engine-f32": "**our engine f32** (tiled, arrays in/out)",
    "engine-bf16": "**our engine bf16** (tiled, arrays in/out)",
    "engine-int8": "**our engine int8** (tiled, arrays in/out)",
    "rlfn-engine-f32": "**RLFN, our engine f32** (tiled, arrays in/out)",
    "rlfn-engine-bf16": "**RLFN, our engine bf16** (tiled, arrays in/out)",
    "rlfn-engine-int8": "**RLFN, our engine int8** (float-kept layers; tiled, arrays in/out)",
    "openvino-f32": "OpenVINO f32, one untiled inference",
    "openvino-bf16": "OpenVINO bf16, one untiled inference",
    "openvino-int8": "OpenVINO int8, one untiled inference",
    "torch-f32": "PyTorch eager f32",
    "torch-bf16": "PyTorch eager bf16 autocast",
    "onnxruntime": "ONNX Runtime f32 (CPU EP)",
    "opencv-dnn": "OpenCV DNN f32 (readNetFromONNX)",
}
RESULTS = prepare.OUT / "engine_peers.json"


def test_image(size: int, seed: int = 0) -> np.ndarray:
    """A synthetic photo-like RGB image (gradients, edges, noise): speed does not depend on content."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack([np.sin(7 * x + 3 * y), np.cos(5 * y - 2 * x), np.sin(11 * x * y)], axis=2) * 80 + 128
    base += (((x * 8).astype(int) + (y * 8).astype(int)) % 2)[..., None] * 30
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


# --- runners ---------------------------------------------------------------------------------------------


def torch_runner(scale: int, bf16: bool) -> Runner:
    import torch

    torch.set_num_threads(threads())
    model = prepare.torch_model(scale)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return model(torch.from_numpy(x)).float().numpy()

    return run


def ort_runner(scale: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(prepare.onnx_path(scale)), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"lr": x})[0]


def opencv_runner(scale: int) -> Runner:
    import cv2

    cv2.setNumThreads(threads())
    net = cv2.dnn.readNetFromONNX(str(prepare.onnx_path(scale)))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)

    def run(x: np.ndarray) -> np.ndarray:
        net.setInput(x)
        return net.forward()

    return run


def openvino_runner(scale: int, precision: str, size: int) -> Runner:
    """One inference of the whole image: the engine's compiled model reshaped to the image itself."""
    from upscale_worker.engine import runtime

    request = runtime.compiled_model(
        prepare.MODELS, scale, "clean", precision, size, size, threads()
    ).create_infer_request()
    return lambda x: request.infer([np.ascontiguousarray(x)])[0]


def engine_runner(scale: int, precision: str, network: str = "edsr") -> Callable[[np.ndarray], np.ndarray]:
    """uint8 RGB in, uint8 RGB out, through the engine's public call, on ``network`` (edsr, rlfn)."""
    from upscale_worker.engine import Options, upscale_array

    return lambda rgb: upscale_array(rgb, scale, Options(precision=precision, network=network))


def engine_of(name: str) -> tuple[str, str] | None:
    """("edsr" | "rlfn", precision) for an engine row's name ("engine-int8", "rlfn-engine-bf16"), else None."""
    network, engine, precision = name.rpartition("engine-")
    if not engine:
        return None
    return ("rlfn" if network == "rlfn-" else "edsr"), precision


def peer_runner(name: str, scale: int) -> Runner:
    if name.startswith("torch"):
        return torch_runner(scale, name.endswith("bf16"))
    return ort_runner(scale) if name == "onnxruntime" else opencv_runner(scale)


def image_runner(name: str, scale: int, size: int | None) -> Callable[[np.ndarray], np.ndarray]:
    """Any runner as uint8 RGB -> uint8 RGB (the PSNR path); ``size`` compiles OpenVINO to that side."""
    from upscale_worker.engine.pixels import from_model, to_model

    if engine_of(name):
        network, precision = engine_of(name)
        return engine_runner(scale, precision, network)
    infer = (
        openvino_runner(scale, name.split("-")[1], size)
        if name.startswith("openvino")
        else peer_runner(name, scale)
    )
    return lambda rgb: from_model(infer(to_model(rgb)), rgb.dtype)


# --- measurements ----------------------------------------------------------------------------------------


def seconds_per_image(name: str, scale: int, size: int) -> float:
    from upscale_worker.engine.pixels import to_model

    rgb = test_image(size)
    if engine_of(name):
        network, precision = engine_of(name)
        run, arg = engine_runner(scale, precision, network), rgb
        run(test_image(16))  # compiles the tile shape (or loads it from CACHE_DIR) outside the timing
    else:
        run = (
            openvino_runner(scale, name.split("-")[1], size)
            if name.startswith("openvino")
            else peer_runner(name, scale)
        )
        arg = to_model(rgb)
    with training_paused():
        return time_call(lambda: run(arg), min_seconds=1.5, max_runs=3, slow=float("inf"))


def set5_psnr(name: str, scale: int = 2) -> float:
    """Mean Y-PSNR on Set5 (HR mod-cropped, MATLAB-bicubic LR, ``scale`` border shaved)."""
    from PIL import Image

    from upscale_worker.engine.imresize import imresize
    from upscale_worker.engine.metrics import mod_crop, psnr_y
    from upscale_worker.evaluate import hr_images

    if name.startswith("openvino"):  # the engine's tiled output equals one inference within 1 grey level
        name = "engine-" + name.split("-")[1]
    run = image_runner(name, scale, None)
    scores = []
    for path in hr_images(BENCHMARK_SETS / "Set5"):
        hr = mod_crop(np.asarray(Image.open(path).convert("RGB")), scale)
        scores.append(psnr_y(run(imresize(hr, 1 / scale)), hr, scale))
    return float(np.mean(scores))


def shipped_psnr(precision: str) -> float:
    """Set5 x2 of the shipped models/ IR (the engine's own evaluation)."""
    from upscale_worker import evaluate
    from upscale_worker.engine import Options
    from upscale_worker.engine.config import REPO_ROOT

    engine_config.update(models_dir=REPO_ROOT / "models")
    try:
        rows = evaluate.evaluate(BENCHMARK_SETS / "Set5", 2, Options(precision=precision))
        return evaluate.mean_row(rows).psnr
    finally:
        engine_config.update(models_dir=prepare.MODELS)


def shipped_iteration() -> str:
    from upscale_worker.engine.models import read_manifest, variant_of

    for entry in read_manifest(Path(prepare.ROOT / "models"))["models"]:
        if entry["scale"] == 2 and entry["weights"] == "fp16" and variant_of(entry) == "clean":
            return str(entry.get("training", {}).get("iteration", "?"))
    return "?"


def goal_line(names: list[str], configs: list, times: dict, fastest: dict) -> str:
    """Issue 6's goal: the default precision >= 2.5x the fastest peer within 0.05 dB of f32 on Set5."""
    from upscale_worker.engine import runtime
    from upscale_worker.engine.models import set5_psnr

    parts = []
    for scale in dict.fromkeys(scale for scale, _ in configs):
        precision = runtime.precision(scale)
        name = f"engine-{precision}"
        ratios = [
            fastest[c] / times[name, *c]
            for c in configs
            if c[0] == scale and name in names and isinstance(times[name, *c], float) and fastest[c]
        ]
        if not ratios:
            continue
        psnr = set5_psnr(scale)
        delta = (
            f", {psnr[precision] - psnr['f32']:+.3f} dB against f32 on Set5"
            if {precision, "f32"} <= set(psnr)
            else ""
        )
        parts.append(
            f"x{scale} runs {precision}: {min(ratios):.2f}x to {max(ratios):.2f}x the fastest peer{delta}"
        )
    return (
        "Goal (issue 6): the default >= 2.5x the fastest peer within 0.05 dB of f32. Measured: "
        + "; ".join(parts)
        + "."
    )


def networks_line(names: list[str], configs: list, times: dict) -> str | None:
    """Issue 23, per cell: RLFN at its default precision against EDSR at its own, both through the engine."""
    from upscale_worker.engine import runtime

    parts = []
    for scale, size in configs:
        edsr = f"engine-{runtime.precision(scale)}"
        rlfn = f"rlfn-engine-{runtime.precision(scale, 'clean', 'rlfn')}"
        if {edsr, rlfn} <= set(names) and all(isinstance(times[n, scale, size], float) for n in (edsr, rlfn)):
            ratio = times[edsr, scale, size] / times[rlfn, scale, size]
            parts.append(f"{size}² x{scale} {ratio:.2f}x ({rlfn.split('-')[-1]} vs {edsr.split('-')[-1]})")
    if not parts:
        return None
    return (
        'RLFN rows: the same images, the same engine call with `Options(network="rlfn")`, the shipped RLFN IR '
        "(the authors' weights; docs/rlfn.md); their ratio is against the same EDSR peers. RLFN at its default "
        "precision here against EDSR at its own, speed-up: " + "; ".join(parts) + "."
    )


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="256,512", help="input sides, comma-separated")
    p.add_argument("--scales", default="2,4")
    p.add_argument("--runners", default=",".join(OURS + RLFN + PEERS))
    p.add_argument("--no-psnr", action="store_true", help="skip the Set5 PSNR column")
    p.add_argument("--results", type=Path, help=f"reuse the measurements saved in this file (e.g. {RESULTS})")
    args = p.parse_args(argv)
    facts = prepare.prepare()
    engine_config.update(models_dir=prepare.MODELS)
    sizes, scales = [int(s) for s in args.sizes.split(",")], [int(s) for s in args.scales.split(",")]
    names = args.runners.split(",")
    configs = [(scale, size) for scale in scales for size in sizes]
    times: dict[tuple[str, int, int], float | str] = {}
    psnr: dict[str, float | str] = {}
    if args.results:  # re-render a previous run without measuring again
        saved = json.loads(args.results.read_text())
        times = {(n, int(sc), int(si)): v for n, sc, si, v in saved["times"]}
        psnr = saved["psnr"]
        LOADS.extend(saved.get("loads", []))  # the load seen while those were timed, for the caption
        measured_at = saved.get("measured_at", "earlier")
    for name in names:
        for scale, size in configs:
            if (name, scale, size) in times:
                continue
            try:
                times[name, scale, size] = seconds_per_image(name, scale, size)
            except Exception as e:  # a peer that cannot run this model is reported, not fatal
                times[name, scale, size] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
            print(name, scale, size, times[name, scale, size], flush=True)
            gc.collect()
        if not args.no_psnr and name not in psnr:
            twin = "engine-" + name.split("-")[1] if name.startswith("openvino") else name
            try:
                psnr[name] = psnr[twin] if twin in psnr else set5_psnr(name)
            except Exception as e:
                psnr[name] = f"failed: {type(e).__name__}"
            print(name, "Set5 x2", psnr[name], flush=True)
    if not args.results:
        measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    saved = {
        "times": [[*k, v] for k, v in times.items()],
        "psnr": psnr,
        "loads": LOADS,
        "measured_at": measured_at,
    }
    RESULTS.write_text(json.dumps(saved, indent=1))
    fastest = {
        c: min((times[n, *c] for n in names if n in PEERS and isinstance(times[n, *c], float)), default=None)
        for c in configs
    }

    def cell(name: str, scale: int, size: int) -> str:
        t = times[name, scale, size]
        if isinstance(t, str):
            return t
        mp_s = (size * scale) ** 2 / 1e6 / t
        ratio = fastest[scale, size] / t if fastest[scale, size] else float("nan")
        return f"{t * 1000:,.0f} ms · {mp_s:.2f} MP/s · **{ratio:.2f}x**"

    headers = ["runner", "Set5 x2 PSNR (dB)"] + [f"{size}² x{scale}" for scale, size in configs]
    rows = [
        [LABELS.get(n, n), psnr.get(n, "-") if isinstance(psnr.get(n), str) else fmt(psnr.get(n), 3)]
        + [cell(n, *c) for c in configs]
        for n in names
    ]
    notes = [
        f"Each cell: ms per image, output megapixels per second, and speed relative to the fastest peer "
        f"({', '.join(LABELS[n] for n in names if n in PEERS)}) for that size; best of up to 3 runs (one when a "
        f"run takes over 1.5 s) after a warm-up run, {threads()} threads everywhere, "
        + (
            "the machine's other work not paused (BENCH_NO_PAUSE)."
            if os.environ.get("BENCH_NO_PAUSE")
            else "training paused while timing."
        ),
        f"Weights: training/runs/xN/best.pt (x2 iteration {facts.get('x2_iteration')}, x4 iteration "
        f"{facts.get('x4_iteration')}), the same checkpoint in PyTorch, in ONNX (ORT, OpenCV; bench/out/onnx) "
        "and in the shipped IR in models/ (FP16-compressed weights; int8 = its NNCF twin).",
        "PSNR: Set5 x2, Y channel, MATLAB bicubic LR, 2-pixel border, same weights for every runner; "
        "OpenVINO one-inference rows share the engine's PSNR (tiled == untiled within 1 grey level).",
    ]
    notes.insert(0, goal_line(names, configs, times, fastest))
    rlfn_note = networks_line(names, configs, times)
    if rlfn_note:
        notes.insert(1, rlfn_note)
    if args.results:
        notes.append(
            f"Speeds and PSNR measured {measured_at} (saved in {args.results.name}); table rendered later."
        )
    if not args.no_psnr:
        try:
            shipped = {p: shipped_psnr(p) for p in ("f32", "bf16", "int8")}
            notes.append(
                f"Shipped models/edsr_baseline_x2 (iteration {shipped_iteration()}) on Set5 x2 through the "
                f"engine: f32 {shipped['f32']:.3f} dB, bf16 {shipped['bf16']:.3f} dB, "
                f"int8 {shipped['int8']:.3f} dB."
            )
        except Exception as e:
            notes.append(f"Shipped x2 model not scored: {e}")
    return publish(
        "engine-peers",
        "Engine vs peers: EDSR baseline (and RLFN), ms per image",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
