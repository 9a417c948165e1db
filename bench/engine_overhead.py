"""Engine overhead: the engine's wall time per image against one untiled inference of the same image.

    python -m bench.engine_overhead [--precisions bf16,int8] [--tiles 128,256] [--scale 4] [--no-large]

For a 512x512 PNG: ``upscale_file`` (decode, windows with their overlap, inference, pixel
conversion, PNG encode), split into its parts, against one inference of the whole 512x512 image with the
same compiled precision. For 2000x1500 (whose whole-image inference would not fit in memory at x4): time per
output megapixel against the untiled 512x512 inference's, and the computed-pixels ratio of the tiling.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench import prepare
from bench.common import fmt, markdown_table, publish, threads, time_call, training_paused
from bench.engine_peers import openvino_runner, test_image
from upscale_worker.engine import config as engine_config


def engine_tile(width: int, height: int, tile: int | None) -> int:
    """The tile the engine runs: ``tile`` when pinned, else its pick among the compiled tile sides."""
    from upscale_worker.engine import runtime
    from upscale_worker.engine.api import OVERLAP, computed_size
    from upscale_worker.engine.tiling import best_tile

    return tile or best_tile(*computed_size(width, height), runtime.tile_sizes(), OVERLAP)


def computed_ratio(width: int, height: int, tile: int | None) -> float:
    """Input pixels the network computes per image pixel: windows over the padded image, overlaps included."""
    from upscale_worker.engine.api import OVERLAP, computed_size
    from upscale_worker.engine.tiling import computed_pixels

    return computed_pixels(*computed_size(width, height), engine_tile(width, height, tile), OVERLAP) / (
        width * height
    )


def tile_label(width: int, height: int, tile: int | None) -> str:
    from upscale_worker.engine import runtime

    if tile:
        return f"tile {tile}"
    sides = "/".join(map(str, runtime.tile_sizes()))
    return f"tiles {sides} (default): {engine_tile(width, height, None)} picked"


def write_png(rgb: np.ndarray, folder: Path, name: str) -> Path:
    from PIL import Image

    path = folder / name
    Image.fromarray(rgb).save(path, compress_level=3)
    return path


def measure(scale: int, precision: str, tile: int | None, src: Path, dst: Path, runs: int) -> dict:
    from upscale_worker.engine import Options, pixels, upscale_array, upscale_file

    options = Options(precision=precision, tile=tile)
    upscale_file(
        src, dst, scale, options=options
    )  # warm-up: compiles (or loads from CACHE_DIR) this tile shape
    picture = pixels.load(src)
    with training_paused():
        wall = time_call(
            lambda: upscale_file(src, dst, scale, options=options),
            min_seconds=float("inf"),
            max_runs=runs,
            warmup=0,
        )
        decode = time_call(lambda: pixels.load(src), min_seconds=float("inf"), max_runs=runs, warmup=0)
        tiled = time_call(
            lambda: upscale_array(picture.rgb, scale, options),
            min_seconds=float("inf"),
            max_runs=runs,
            warmup=0,
        )
        out = picture.with_pixels(upscale_array(picture.rgb, scale, options), None)
        encode = time_call(
            lambda: pixels.save(out, dst, "png", 95, False), min_seconds=float("inf"), max_runs=runs, warmup=0
        )
    return {"wall": wall, "decode": decode, "tiled": tiled, "encode": encode}


def untiled(scale: int, precision: str, size: int, runs: int) -> float:
    from upscale_worker.engine.pixels import to_model

    run = openvino_runner(scale, precision, size)
    x = to_model(test_image(size))
    with training_paused():
        return time_call(lambda: run(x), min_seconds=float("inf"), max_runs=runs, warmup=1)


def main(argv: list[str] | None = None) -> str:
    from upscale_worker.engine import Options, runtime, upscale_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument(
        "--precisions", default="", help="default: the engine's default precision, then bf16 and int8"
    )
    p.add_argument(
        "--tiles",
        default="",
        help="tile sides to pin and compare with the engine's own pick per image (default: 128, the "
        "former single tile)",
    )
    p.add_argument("--runs", type=int, default=5, help="best of (the 2000x1500 image: best of 2)")
    p.add_argument("--no-large", action="store_true", help="skip the 2000x1500 image")
    args = p.parse_args(argv)
    prepare.prepare()
    engine_config.update(models_dir=prepare.MODELS)
    default_precision = runtime.precision(4)
    precisions = (
        args.precisions.split(",")
        if args.precisions
        else list(dict.fromkeys([default_precision, "bf16", "int8"]))
    )
    tiles: list[int | None] = [None] + [int(t) for t in (args.tiles or "128").split(",")]
    scale, size = args.scale, 512
    rows = []
    with tempfile.TemporaryDirectory(dir=prepare.OUT) as tmp:
        folder = Path(tmp)
        src = write_png(test_image(size), folder, "in512.png")
        for precision in precisions:
            whole = untiled(scale, precision, size, args.runs)
            out_mp = (size * scale) ** 2 / 1e6
            for tile in tiles:
                m = measure(scale, precision, tile, src, folder / "out.png", args.runs)
                print(precision, tile, m, whole, flush=True)
                rows.append(
                    [
                        f"{precision}, {tile_label(size, size, tile)}",
                        f"{size}x{size}",
                        fmt(whole * 1000, 0),
                        fmt(m["wall"] * 1000, 0),
                        fmt(m["decode"] * 1000, 0),
                        fmt(m["tiled"] * 1000, 0),
                        fmt(m["encode"] * 1000, 0),
                        f"{computed_ratio(size, size, tile):.2f}",
                        f"**{m['wall'] / whole:.2f}x**",
                        f"{m['tiled'] / whole:.2f}x",
                        fmt(whole / out_mp * 1000, 0),
                        fmt(m["wall"] / out_mp * 1000, 0),
                    ]
                )
        if not args.no_large:
            w, h = 2000, 1500
            big = np.tile(test_image(500), (3, 4, 1))[:h, :w]
            big_src = write_png(np.ascontiguousarray(big), folder, "in2000x1500.png")
            out_mp = w * h * scale * scale / 1e6
            for precision in precisions[:1]:
                whole = untiled(scale, precision, size, args.runs) / ((size * scale) ** 2 / 1e6)
                for tile in tiles:
                    options = Options(precision=precision, tile=tile)
                    with training_paused():
                        wall = time_call(
                            lambda: upscale_file(big_src, folder / "big.png", scale, options=options),
                            min_seconds=float("inf"),
                            max_runs=2,
                            warmup=0,
                        )
                    print("2000x1500", precision, tile, wall, flush=True)
                    rows.append(
                        [
                            f"{precision}, {tile_label(w, h, tile)}",
                            f"{w}x{h}",
                            "does not fit",
                            fmt(wall * 1000, 0),
                            "",
                            "",
                            "",
                            f"{computed_ratio(w, h, tile):.2f}",
                            f"**{wall / out_mp / whole:.2f}x** per MP",
                            "",
                            fmt(whole * 1000, 0),
                            fmt(wall / out_mp * 1000, 0),
                        ]
                    )
    headers = [
        "precision, tile",
        "input",
        "one untiled inference (ms)",
        "engine upscale_file (ms)",
        "decode",
        "tiled upscale",
        "PNG encode",
        "computed px / input px",
        "engine / untiled",
        "tiled only / untiled",
        "untiled ms per output MP",
        "engine ms per output MP",
    ]
    notes = [
        f"x{scale}, shipped EDSR baseline IR (models/), {threads()} threads, best of {args.runs} runs, "
        "training paused while timing. The 2000x1500 row is the best of 2 runs; its ratio is engine ms per "
        "output MP over the untiled 512x512 inference's ms per output MP.",
        "computed px / input px: input pixels the network computes (windows x window area, overlaps "
        "included) per input pixel: the tiling's share of the overhead.",
        "Goal (issue 6): engine / untiled <= 1.3x.",
    ]
    return publish(
        "engine-overhead",
        "Engine overhead against one untiled inference",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
