"""How the image's border is handled and how many rounds of back-projection follow: PSNR of each choice.

    python -m bench.borders [--scales 2,3,4] [--borders zero,replicate,reflect] [--pad 8] [--rounds 0,1,2]

Held-out training images (every 40th of ../shared/datasets/train, as the trainer holds them out; never a
benchmark set): PSNR on Y by the paper's protocol (``scale`` pixels shaved) and on the whole image (nothing
shaved: the border itself). Tiny images: centre crops of the same images whose LR is 1x1 to 9x9 (and 1xN
strips), scored on the whole image. Flat images: one colour at sizes 1x1 to 300x200, the worst deviation from
that colour in levels. Synthetic pictures: every opaque PngSuite file (../shared/corpus), the worst shift of
its mean colour against a clipped MATLAB-bicubic upscale, in levels. Prints a markdown table; the engine's
default precision and tiles (the clean models, so back-projection applies).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import list_images, split_validation
from upscale_worker.engine import Options, api, pixels, upscale_array
from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.metrics import mod_crop, psnr_y

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "train"
PNGSUITE = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pngsuite" / "png"
BORDERS = ("zero", "replicate", "reflect")
TINY = [(1, 1), (2, 2), (3, 3), (5, 5), (9, 9), (1, 16), (2, 16), (16, 1)]  # LR (height, width)
FLAT = [(1, 1), (1, 64), (2, 2), (9, 9), (64, 64), (200, 300)]
COLOURS = [(200, 100, 50), (128, 128, 128), (20, 230, 240)]


def held_out() -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in split_validation(list_images(TRAIN))[1]]


def centre(img: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def synthetic() -> list[np.ndarray]:
    """The opaque, valid PngSuite pictures as 8-bit RGB (palettes, grey, gamma ramps, 1x1 to 40x40)."""
    found = []
    for path in sorted(PNGSUITE.glob("[!x]*.png")):
        picture = pixels.load(path)
        if picture.alpha is None and picture.rgb.dtype == np.uint8:
            found.append(picture.rgb)
    return found


def colour_shift(rgb: np.ndarray, scale: int, options: Options) -> float:
    """Largest per-channel difference, in levels, between the means of the engine's and clipped bicubic's upscale."""
    reference = np.clip(imresize(rgb.astype(np.float64), scale), 0, 255)
    out = upscale_array(rgb, scale, options)
    return float(np.abs(out.reshape(-1, 3).mean(0) - reference.reshape(-1, 3).mean(0)).max())


def scores(images: list[np.ndarray], scale: int, border: str, rounds: int) -> dict[str, float]:
    options = Options(border=border, back_projection=rounds)
    protocol, whole, tiny = [], [], []
    for img in images:
        hr = mod_crop(img, scale)
        sr = upscale_array(imresize(hr, 1 / scale), scale, options)
        protocol.append(psnr_y(sr, hr, scale))
        whole.append(psnr_y(sr, hr, 0))
        for h, w in TINY:
            small_hr = centre(hr, h * scale, w * scale)
            tiny.append(psnr_y(upscale_array(imresize(small_hr, 1 / scale), scale, options), small_hr, 0))
    worst_flat = 0
    for (h, w), colour in ((size, c) for size in FLAT for c in COLOURS):
        flat = np.full((h, w, 3), colour, np.uint8)
        worst_flat = max(
            worst_flat, int(np.abs(upscale_array(flat, scale, options).astype(int) - colour).max())
        )
    shift = max(colour_shift(rgb, scale, options) for rgb in synthetic())
    return {
        "protocol": np.mean(protocol),
        "whole": np.mean(whole),
        "tiny": np.mean(tiny),
        "flat": worst_flat,
        "shift": shift,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--borders", default=",".join(BORDERS))
    parser.add_argument(
        "--pad", type=int, default=api.PAD, help="pixels added on each side (default: the engine's)"
    )
    parser.add_argument(
        "--rounds", default=str(api.BACK_PROJECTION), help="rounds of back-projection to compare"
    )
    args = parser.parse_args(argv)
    api.PAD = args.pad
    images = held_out()
    print(f"{len(images)} held-out images, padding {args.pad} pixels\n")
    print(
        "| scale | border | back-projection | held-out PSNR (shave = scale) | held-out PSNR (whole image) "
        "| tiny images PSNR | flat: worst level error | PngSuite: worst colour shift |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for scale in map(int, args.scales.split(",")):
        for border in args.borders.split(","):
            for rounds in map(int, args.rounds.split(",")):
                s = scores(images, scale, border, rounds)
                print(
                    f"| x{scale} | {border} | {rounds} | {s['protocol']:.3f} | {s['whole']:.3f} | {s['tiny']:.2f} "
                    f"| {s['flat']} | {s['shift']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
