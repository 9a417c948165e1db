"""Against the model OpenVINO's own super-resolution demo uses: Intel single-image-super-resolution-1032 (x4)
and -1033 (x3), FP32 IR from ../shared/weights (two BGR inputs: the LR image and its bicubic upscale).

    python -m bench.intel_peer [--sets Set5,Set14,B100] [--precisions f32,bf16] [--no-speed]

PSNR/SSIM by the engine's evaluation protocol (MATLAB-bicubic LR, Y channel BT.601, ``scale``-pixel border).
Speed: one image of the Intel models' native input size (480x270 at x4, 640x360 at x3), whole pipeline
(bicubic input, inference, conversion) for Intel; ``upscale_array`` and one untiled inference for ours.
"""

from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path

import numpy as np

from bench import prepare
from bench.common import (
    BENCHMARK_SETS,
    ROOT,
    fmt,
    markdown_table,
    publish,
    threads,
    time_call,
    training_paused,
)

WEIGHTS = ROOT.parent / "shared" / "weights"
INTEL = {4: "single-image-super-resolution-1032", 3: "single-image-super-resolution-1033"}
NATIVE = {4: (480, 270), 3: (640, 360)}  # input width, height


def intel_xml(scale: int) -> Path:
    name = INTEL[scale]
    return WEIGHTS / name / "FP32" / f"{name}.xml"


@lru_cache(maxsize=16)
def intel_compiled(scale: int, precision: str, h: int, w: int):
    import openvino.properties as props
    import openvino.properties.hint as hints

    from upscale_worker.engine import runtime

    core = runtime.core()
    model = core.read_model(intel_xml(scale))
    model.reshape({"0": [1, 3, h, w], "1": [1, 3, h * scale, w * scale]})
    config = {
        hints.inference_precision: runtime.inference_type(precision),
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        props.inference_num_threads: threads(),
        hints.enable_cpu_pinning: False,
    }
    return core.compile_model(model, "CPU", config)


def intel_upscale(rgb: np.ndarray, scale: int, precision: str) -> np.ndarray:
    """uint8 RGB -> uint8 RGB through the Intel IR, as Open Model Zoo's demo feeds it."""
    import cv2

    h, w = rgb.shape[:2]
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    cubic = cv2.resize(bgr, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    request = intel_compiled(scale, precision, h, w).create_infer_request()
    out = request.infer(
        {
            "0": bgr.transpose(2, 0, 1)[None].astype(np.float32),
            "1": cubic.transpose(2, 0, 1)[None].astype(np.float32),
        }
    )
    sr = next(iter(out.values()))[0].transpose(1, 2, 0) * 255.0
    return np.rint(np.clip(sr, 0, 255)).astype(np.uint8)[..., ::-1]


def score(folder: Path, scale: int, upscale) -> tuple[float, float, float]:
    """Mean (bicubic PSNR, PSNR, SSIM) of ``upscale`` on a benchmark set, by the engine's protocol."""
    from PIL import Image

    from upscale_worker.engine.imresize import imresize
    from upscale_worker.engine.metrics import mod_crop, psnr_y, ssim_y
    from upscale_worker.evaluate import hr_images

    rows = []
    for path in hr_images(folder):
        hr = mod_crop(np.asarray(Image.open(path).convert("RGB")), scale)
        lr = imresize(hr, 1 / scale)
        sr = upscale(lr) if upscale else None
        rows.append(
            (
                psnr_y(imresize(lr, scale), hr, scale),
                psnr_y(sr, hr, scale) if sr is not None else float("nan"),
                ssim_y(sr, hr, scale) if sr is not None else float("nan"),
            )
        )
    return tuple(float(np.mean(c)) for c in zip(*rows))


def trained_ours(scale: int) -> dict:
    """The shipped models/ entry for this scale (bench.prepare checked that it exists)."""
    from upscale_worker.engine.models import read_manifest, variant_of

    for entry in read_manifest(ROOT / "models")["models"]:
        if entry["scale"] == scale and entry["weights"] == "fp16" and variant_of(entry) == "clean":
            return entry
    raise SystemExit(f"no x{scale} model in models/")


def main(argv: list[str] | None = None) -> str:
    from bench.engine_peers import test_image
    from upscale_worker.engine import Options, runtime, upscale_array

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="Set5,Set14,B100")
    p.add_argument("--precisions", default="f32,bf16", help="for the Intel IR")
    p.add_argument("--no-speed", action="store_true")
    args = p.parse_args(argv)
    prepare.prepare()
    sets = args.sets.split(",")
    float_precision = "bf16" if runtime.cpu_has_bf16() else "f32"
    rows = []
    for scale in (4, 3):
        native_w, native_h = NATIVE[scale]
        image = test_image(max(native_w, native_h))[:native_h, :native_w]
        out_mp = native_w * native_h * scale * scale / 1e6
        bicubic = {s: score(BENCHMARK_SETS / s, scale, None)[0] for s in sets}
        rows.append(
            ["bicubic (MATLAB imresize)", f"x{scale}", "", *[fmt(bicubic[s], 2) for s in sets], "", ""]
        )
        for precision in args.precisions.split(","):
            scores = {
                s: score(BENCHMARK_SETS / s, scale, lambda lr: intel_upscale(lr, scale, precision))
                for s in sets
            }
            speed = ""
            if not args.no_speed:
                with training_paused():
                    t = time_call(lambda: intel_upscale(image, scale, precision), min_seconds=1, max_runs=5)
                speed = (fmt(t * 1000, 0), fmt(out_mp / t, 2))
            print(INTEL[scale], precision, scores, speed, flush=True)
            rows.append(
                [
                    f"Intel {INTEL[scale]} (FP32 IR)",
                    f"x{scale}",
                    precision,
                    *[f"{scores[s][1]:.2f} / {scores[s][2]:.4f}" for s in sets],
                    *(speed or ("", "")),
                ]
            )
        entry = trained_ours(scale)
        label = f"ours: shipped {entry['name']} (iteration {entry.get('training', {}).get('iteration', '?')}), engine"
        for precision in dict.fromkeys([float_precision, "int8"]):
            options = Options(precision=precision)
            ours = {
                s: score(BENCHMARK_SETS / s, scale, lambda lr: upscale_array(lr, scale, options))
                for s in sets
            }
            speed = ("", "")
            if not args.no_speed:
                with training_paused():
                    t = time_call(lambda: upscale_array(image, scale, options), min_seconds=1, max_runs=3)
                speed = (fmt(t * 1000, 0), fmt(out_mp / t, 2))
            default = " (default)" if precision == runtime.precision(scale) else ""
            rows.append(
                [
                    label,
                    f"x{scale}",
                    precision + default,
                    *[f"{ours[s][1]:.2f} / {ours[s][2]:.4f}" for s in sets],
                    *speed,
                ]
            )
            print(label, precision, ours, speed, flush=True)
    headers = [
        "model",
        "scale",
        "precision",
        *[f"{s} PSNR / SSIM" for s in sets],
        "ms per image (native size)",
        "output MP/s",
    ]
    notes = [
        f"PSNR (dB) / SSIM on Y (BT.601), MATLAB-bicubic LR, border = scale, mean over each set; {threads()} "
        "threads, training paused while timing (best of up to 5 runs after a warm-up).",
        "Speed image: the Intel models' native input, 480x270 at x4 (-> 1920x1080) and 640x360 at x3 "
        "(-> 1920x1080); Intel timed with its cv2 bicubic second input; ours through upscale_array "
        "(tiles, overlap, pixel conversion).",
        "Intel 1032/1033 are small attention networks (~30 k parameters), not EDSR (1.5 M at x4).",
    ]
    return publish(
        "intel-peer",
        "EDSR (ours) against Intel single-image-super-resolution-1032/1033",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
