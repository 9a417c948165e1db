"""How much an int8 result depends on its windows: the share of pixels that differ by 2 levels or more between
windows of a tile side and one window of the whole picture, without back-projection, with its rounds, and with
its rounds and settling (issue 21).

    python -m bench.windows [--scales 2,3,4] [--tiles 64,128] [--f32-float-layers]

Set5 and the held-out training images (every 40th of ../shared/datasets/train, as the trainer holds them out),
each shrunk by MATLAB bicubic. The int8 model's float layers run as the engine runs them on this CPU (bf16
where it has it) unless --f32-float-layers. Prints a markdown table (docs/engine.md, "Windows and
back-projection").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import list_images, split_validation
from upscale_worker.engine import Options, backprojection, runtime, upscale_array
from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.metrics import mod_crop

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
ONE_WINDOW = 4096  # a tile larger than any of the pictures: one window each
VARIANTS = {
    "no back-projection": (0, 0),
    "rounds": (None, 0),
    "rounds + settling": (None, backprojection.SETTLE),
}


def pictures() -> list[np.ndarray]:
    paths = sorted((SHARED / "benchmark" / "Set5" / "HR").glob("*.png"))
    paths += split_validation(list_images(SHARED / "train"))[1]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def share_off(images: list[np.ndarray], scale: int, tile: int, rounds: int | None, settle: int) -> float:
    """Percent of output pixels whose largest channel difference is 2 levels or more."""
    backprojection.SETTLE = settle
    off = total = 0
    for img in images:
        lr = imresize(mod_crop(img, scale), 1 / scale)
        tiled = upscale_array(lr, scale, Options(precision="int8", tile=tile, back_projection=rounds))
        whole = upscale_array(lr, scale, Options(precision="int8", tile=ONE_WINDOW, back_projection=rounds))
        off += int((np.abs(tiled.astype(int) - whole).max(axis=2) >= 2).sum())
        total += tiled.shape[0] * tiled.shape[1]
    return 100 * off / total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--tiles", default="64,128")
    parser.add_argument(
        "--f32-float-layers", action="store_true", help="int8's float layers in f32, not bf16"
    )
    args = parser.parse_args(argv)
    if args.f32_float_layers:
        runtime.cpu_has_bf16 = lambda: False  # what inference_type asks
    floats = "bf16" if runtime.cpu_has_bf16() else "f32"
    images = pictures()
    print(f"{len(images)} pictures (Set5 and held-out), int8 with {floats} float layers\n")
    print(f"| scale | tile | float layers | {' | '.join(VARIANTS)} |")
    print(f"| --- | --- | --- |{' ---: |' * len(VARIANTS)}")
    for scale in map(int, args.scales.split(",")):
        for tile in map(int, args.tiles.split(",")):
            shares = [share_off(images, scale, tile, r, s) for r, s in VARIANTS.values()]
            print(
                f"| x{scale} | {tile} | {floats} | " + " | ".join(f"{v:.3f}%" for v in shares) + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
