"""Command line: upscale files or folders, and evaluate the engine on a benchmark set.

python -m upscale_worker upscale photo.jpg photo_x4.png --scale 4
python -m upscale_worker upscale photos/ upscaled/ --scale 2 --format webp
python -m upscale_worker upscale photo.jpg photo_x4.png --scale 4 --network rlfn
python -m upscale_worker upscale photo.jpg wallpaper.png --long-side 3840
python -m upscale_worker upscale scan.png print.png --width 30cm --dpi 300
python -m upscale_worker evaluate --scale 4 ../shared/datasets/benchmark/Set5
python -m upscale_worker evaluate --scale 4 --jpeg 50,75,90 ../shared/datasets/benchmark/Set5
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from upscale_worker import evaluate as evaluation
from upscale_worker.engine import EngineError, Options, header, limits, upscale_file
from upscale_worker.engine.compression import SOURCES
from upscale_worker.engine.config import EngineConfig, configure, current
from upscale_worker.engine.models import NETWORKS, check_network, default_network
from upscale_worker.engine.target import Target, from_length, parse_length
from upscale_worker.engine.vocabulary import OUTPUT_FORMATS, SCALES
from upscale_worker.evaluate import SUFFIXES

# A folder's files that are upscaled: the evaluation's suffixes and the other formats the site accepts.
INPUT_SUFFIXES = SUFFIXES | {".gif", ".heic", ".heif", ".avif", ".tif", ".tiff"}

FORMAT_OF_SUFFIX = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".avif": "avif",
    ".tif": "tiff",
    ".tiff": "tiff",
}


def output_format(path: Path, requested: str | None) -> str:
    fmt = requested or FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise EngineError(
            f"Cannot tell the output format from {path.name}; use .png, .jpg, .webp, .avif or .tif, or --format."
        )
    return fmt


def check(src: Path, dst: Path, fmt: str, args: argparse.Namespace) -> int:
    """The site's upload check for one file, from its header (and a JPEG's 1/8-scale draft), before any work:
    raises EngineError with one line (damaged, truncated, animated, too large for the limits or ``fmt``, a
    target not larger than the picture). Returns the scale: --scale, or the smallest of the network's that
    reaches the target (--width, --height or --long-side)."""
    if dst.exists() and not args.overwrite:
        raise EngineError(f"{dst} exists; use --overwrite to replace it.")
    cap = limits.NO_LIMITS if args.no_limits else limits_from(os.environ)
    with open(src, "rb") as f:
        found = header.read_header(f, cap, header.SITE_FORMATS)
        target = wanted_target(args)
        if target is None:
            scale = args.scale or DEFAULT_SCALE
            limits.check(found.width, found.height, scale, fmt, cap)
        else:
            scale = limits.check_target(found.width, found.height, target, fmt, cap, network_scales(args))
        header.check_data(f, found)
    return scale


DEFAULT_SCALE = 4


def wanted_target(args: argparse.Namespace) -> Target | None:
    """The size asked for by --width, --height or --long-side (pixels, or a print length such as 30cm with
    --dpi), or None. Raises EngineError for a bad length or a --dpi/--scale that does not go with it."""
    given = [(side, getattr(args, side)) for side in ("width", "height", "long_side") if getattr(args, side)]
    if not given:
        if getattr(args, "dpi", None) is not None:
            raise EngineError("--dpi goes with a target size (--width, --height or --long-side).")
        return None
    if args.scale is not None:
        raise EngineError("Give --scale or a target size, not both: the target chooses the scale.")
    ((side, text),) = given
    length, unit = parse_length(text)
    return from_length(side, length, unit, args.dpi)


def network_scales(args: argparse.Namespace) -> list[int]:
    """The scales the chosen network has installed (RLFN has no x3)."""
    from upscale_worker.engine import models

    return models.available_scales(None, args.network or models.default_network()) or list(SCALES)


def _env_number(environ: Mapping[str, str], name: str, kind: type, default=None):
    """A number from ``environ`` (empty or unset: ``default``); EngineError naming the variable otherwise."""
    value = environ.get(name, "").strip()
    try:
        return kind(value) if value else default
    except ValueError:
        raise EngineError(f"{name}={value!r} is not a {kind.__name__} number.") from None


def limits_from(environ: Mapping[str, str]) -> limits.Limits:
    """The site's megapixel limits, read from the same variables (MAX_INPUT_MEGAPIXELS, MAX_OUTPUT_MEGAPIXELS)."""
    return limits.Limits(
        _env_number(environ, "MAX_INPUT_MEGAPIXELS", float, limits.DEFAULT_INPUT_MEGAPIXELS),
        _env_number(environ, "MAX_OUTPUT_MEGAPIXELS", float, limits.DEFAULT_OUTPUT_MEGAPIXELS),
    )


def config_from_env(
    environ: Mapping[str, str],
    models_dir: Path | None = None,
    threads: int | None = None,
    base: EngineConfig | None = None,
) -> EngineConfig:
    """The engine's configuration for a process outside the site (the CLI, benchmarks, tools): the arguments
    given, then UPSCALE_MODELS_DIR, UPSCALE_CACHE_DIR, UPSCALE_PRECISION, UPSCALE_THREADS (0 or empty: every
    core), UPSCALE_TILE (comma-separated sides), UPSCALE_WINDOW_AREA, UPSCALE_WINDOW_COSTS, UPSCALE_MODELS (networks offered) and UPSCALE_DEFAULT_NETWORK, then ``base`` (default: the engine's defaults). Raises
    EngineError on a value it cannot read."""
    default = base or EngineConfig()
    sides = [t for t in environ.get("UPSCALE_TILE", "").split(",") if t.strip()]
    return EngineConfig(
        models_dir=Path(models_dir or environ.get("UPSCALE_MODELS_DIR") or default.models_dir),
        cache_dir=Path(environ.get("UPSCALE_CACHE_DIR") or default.cache_dir),
        precision=environ.get("UPSCALE_PRECISION") or default.precision,
        threads=threads
        if threads is not None
        else _env_number(environ, "UPSCALE_THREADS", int) or default.threads,
        tiles=tuple(_env_number({"UPSCALE_TILE": t}, "UPSCALE_TILE", int) for t in sides) or default.tiles,
        window_area=_env_number(environ, "UPSCALE_WINDOW_AREA", int, default.window_area),
        window_costs=Path(environ.get("UPSCALE_WINDOW_COSTS") or default.window_costs),
        networks=tuple(n.strip() for n in environ.get("UPSCALE_MODELS", "").split(",") if n.strip())
        or default.networks,
        default_network=environ.get("UPSCALE_DEFAULT_NETWORK") or default.default_network,
    )


def upscale_one(src: Path, dst: Path, args: argparse.Namespace) -> None:
    scale = check(src, dst, output_format(dst, args.format), args)
    with tqdm(desc=src.name, unit="tile", leave=False) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = upscale_file(
            src,
            dst,
            scale,
            output_format(dst, args.format),
            args.quality,
            args.keep_metadata,
            progress,
            options=options(args),
            target=wanted_target(args),
        )
    resized = f"x{result.scale} then resized, " if result.target else ""
    print(
        f"{src} {result.input_size[0]}x{result.input_size[1]} -> {dst} "
        f"{result.output_size[0]}x{result.output_size[1]} ({resized}{result.model}; {result.choice})"
    )


def output_names(images: list[Path], fmt: str) -> list[str]:
    """One distinct output name per input: photo.png -> photo.webp, but photo.png and photo.jpg, whose stems
    collide (case-insensitively, as some file systems compare), -> photo.png.webp and photo.jpg.webp."""
    ext = "jpg" if fmt == "jpeg" else fmt
    stems = [p.stem.lower() for p in images]
    return [f"{p.stem if stems.count(p.stem.lower()) == 1 else p.name}.{ext}" for p in images]


def upscale_folder(src: Path, dst: Path, args: argparse.Namespace) -> int:
    fmt = args.format or "png"
    images = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
    dst.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path, name in zip(tqdm(images, unit="image"), output_names(images, fmt)):
        try:
            scale = check(path, dst / name, fmt, args)
            upscale_file(
                path,
                dst / name,
                scale,
                fmt,
                args.quality,
                args.keep_metadata,
                options=options(args),
                target=wanted_target(args),
            )
        except (EngineError, OSError) as e:
            failures += 1
            tqdm.write(f"error: {path.name}: {e}", file=sys.stderr)
    print(f"{len(images) - failures} of {len(images)} images upscaled into {dst}")
    return 1 if failures else 0


def options(args: argparse.Namespace) -> Options:
    return Options(
        precision=args.precision, tile=args.tile, source=getattr(args, "source", "auto"), network=args.network
    )


def run_upscale(args: argparse.Namespace) -> int:
    # A network that lacks the scale (RLFN x3) is refused once, before any file is read: never another one.
    check_network(args.network or default_network(), args.scale)
    if args.no_limits:
        Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check, at about 179 megapixels, is lifted too
    if args.input.is_dir():
        return upscale_folder(args.input, args.output, args)
    if not args.input.exists():
        raise EngineError(f"{args.input} does not exist.")
    upscale_one(args.input, args.output, args)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from upscale_worker.engine import models, runtime  # the CLI runs the model anyway

    if args.jpeg:
        return run_evaluate_jpeg(args)
    try:
        rows = evaluation.evaluate(args.dataset, args.scale, options(args))
        network = args.network or models.default_network()
        label = f"{models.NETWORK_NAMES[network]} {args.precision or runtime.precision(args.scale, 'clean', network)}"
    except EngineError as e:  # no model for this scale yet: the bicubic column still checks the protocol
        print(f"note: {e} Only bicubic is scored.", file=sys.stderr)
        rows, label = evaluation.evaluate(args.dataset, args.scale, None), "(no model)"
    print(evaluation.table(rows, args.scale, label))
    return 0


def run_evaluate_jpeg(args: argparse.Namespace) -> int:
    from upscale_worker.engine import models, runtime

    network = args.network or models.default_network()
    sources = []
    for source, variant in (("clean", "clean"), ("compressed", "jpeg")):
        if models.has_variant(args.scale, variant, runtime.models_dir(), network):
            sources.append(source)
        else:
            print(
                f"note: x{args.scale} has no {models.VARIANT_NAMES[variant]} model installed; it is not scored.",
                file=sys.stderr,
            )
    by_quality = {
        q: evaluation.evaluate_jpeg(args.dataset, args.scale, q, args.precision, tuple(sources), network)
        for q in args.jpeg
    }
    label = f"{models.NETWORK_NAMES[network]} " + (
        args.precision
        or ", ".join(f"{v} {runtime.precision(args.scale, v, network)}" for v in ("clean", "jpeg"))
    )
    print(evaluation.jpeg_table(by_quality, args.scale, label))
    return 0


def qualities(text: str) -> list[int]:
    """ "50,75,90" -> [50, 75, 90]; each 1..100."""
    values = [int(q) for q in text.split(",")]
    if not all(1 <= q <= 100 for q in values):
        raise argparse.ArgumentTypeError("JPEG qualities lie in 1..100")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m upscale_worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="command", required=True)
    up = commands.add_parser("upscale", help="upscale an image, or every image of a folder")
    up.add_argument("input", type=Path, help="an image file or a folder of images")
    up.add_argument("output", type=Path, help="the output file, or a folder in folder mode")
    up.add_argument("--format", choices=OUTPUT_FORMATS, help="default: from the output suffix (folders: png)")
    up.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality")
    up.add_argument("--keep-metadata", action="store_true", help="keep EXIF and XMP (ICC is always kept)")
    up.add_argument(
        "--source",
        choices=SOURCES,
        default="auto",
        help="auto: the JPEG-aware model for "
        "compressed inputs below the quality threshold, else the clean one; or force either",
    )
    up.add_argument(
        "--no-limits",
        action="store_true",
        help="lift the site's megapixel limits (MAX_INPUT_MEGAPIXELS, MAX_OUTPUT_MEGAPIXELS: 16 and 100 by "
        "default); each output format's side limit still holds",
    )
    up.add_argument("--overwrite", action="store_true", help="replace output files that exist")
    size = up.add_mutually_exclusive_group()
    for flag, words in (("--width", "width"), ("--height", "height"), ("--long-side", "longer side")):
        size.add_argument(
            flag,
            metavar="LENGTH",
            help=f"instead of --scale: the result's exact {words}, in pixels (3840) or as a print length "
            "(30cm, 300mm, 11.8in, with --dpi); the smallest scale that reaches it runs, then the result is "
            "resized down to it (aspect kept)",
        )
    up.add_argument(
        "--dpi",
        type=float,
        help="with a target size: the print's density (converts cm/mm/in to pixels, and is written into the "
        "result); default: the input's density is kept",
    )
    up.set_defaults(run=run_upscale)
    ev = commands.add_parser("evaluate", help="PSNR/SSIM on a benchmark set (HR images in DIR or DIR/HR)")
    ev.add_argument("dataset", type=Path)
    ev.add_argument(
        "--jpeg",
        type=qualities,
        metavar="Q[,Q...]",
        help="compress each LR as a JPEG at these "
        "qualities (Pillow, 4:2:0) and score bicubic, the clean and the JPEG-aware model on it",
    )
    ev.set_defaults(run=run_evaluate)
    up.add_argument("--scale", type=int, choices=SCALES, help=f"default: x{DEFAULT_SCALE} (or a target size)")
    ev.add_argument("--scale", type=int, choices=SCALES, default=DEFAULT_SCALE)
    for sub in (up, ev):
        sub.add_argument(
            "--precision",
            choices=("f32", "bf16", "int8"),
            help="default: UPSCALE_PRECISION, else int8 where the model card finds it faithful, else bf16 where the CPU has it, else f32",
        )
        sub.add_argument(
            "--tile", type=int, help="one tile side in input pixels (default: UPSCALE_TILE or 128,280)"
        )
        sub.add_argument(
            "--threads", type=int, help="inference threads (default: UPSCALE_THREADS or every core)"
        )
        sub.add_argument("--models-dir", type=Path, help="default: UPSCALE_MODELS_DIR or models/")
        sub.add_argument(
            "--network",
            choices=NETWORKS,
            help="edsr (the product's model) or rlfn (sharper; the scales its models cover); "
            "default: UPSCALE_DEFAULT_NETWORK, else edsr",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # On top of the process' configuration: the defaults when run as a command.
        configure(config_from_env(os.environ, args.models_dir, args.threads, current()))
        return args.run(args)
    except (EngineError, OSError) as e:  # one line, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
