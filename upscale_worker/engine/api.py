"""The engine's public calls: arrays for evaluation, files for the CLI and the Celery task."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from upscale_worker.engine import compression, limits, pixels
from upscale_worker.engine.compression import Compression
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.tiling import BORDERS, Progress, best_tile, on_grid, upscale_tiled

# Tile overlap in input pixels, measured: the tests' random-weights EDSR needs 8 for tiled == whole image
# within 1 grey level (tests/engine/test_tiling.py); the shipped models need 4 (the 11 held-out training
# images, every scale, f32 and int8, tiles 128 and 280). Each pixel less is 1-2% less computing.
OVERLAP = 8
# The image's own border: replicated by PAD pixels before inference (see tiling.py), measured in
# models/README.md ("Image borders"): zero padding left flat images' corners off by up to 34 levels and
# made 1x1 to 9x9 images change colour; PAD = OVERLAP puts the zeros as far away as a seam's.
BORDER = "replicate"
PAD = OVERLAP
# Rounds of back-projection (backprojection.py), measured in models/README.md ("Back-projection"): two after
# a clean model; after a JPEG-aware one, one for an input of (estimated) quality 90 or more, whose own errors
# are small enough that matching it sharpens (held-out x2/x3/x4: +0.10/+0.16/+0.15 dB at Q 90, x2 +0.33 at
# Q 95), none below, where it puts the blocks back (x2 -0.07 dB at Q 85, -0.26 at Q 75).
BACK_PROJECTION = 2
JPEG_BACK_PROJECTION = 1
JPEG_BACK_PROJECTION_QUALITY = 90
SCALES = (2, 3, 4)


@dataclass(frozen=True)
class Geometry:
    """What a network needs of the windows it runs on, from its manifest entry's ``tiling`` (border mode and
    width, overlap, window grid, smallest window side it runs on, smallest tile that keeps tiled == one
    window); what an entry leaves out is EDSR's (above)."""

    border: str = BORDER
    pad: int = PAD
    overlap: int = OVERLAP
    grid: int = 1
    min_window: int = 1
    min_tile: int = 1

    @classmethod
    def of(cls, entry: dict, border: str | None = None) -> "Geometry":
        """The entry's needs; ``border`` (a user's choice, see Options) overrides its border mode."""
        t = entry.get("tiling", {})
        geometry = cls(
            t.get("border", BORDER),
            t.get("border_width", PAD),
            t.get("overlap", OVERLAP),
            t.get("window_grid", 1),
            t.get("min_window", 1),
            t.get("min_tile", 1),
        )
        geometry = replace(geometry, border=border or geometry.border)
        if geometry.border not in BORDERS:
            raise EngineError(f"Unknown border {geometry.border!r}; choose one of {', '.join(BORDERS)}.")
        return replace(geometry, pad=0) if BORDERS[geometry.border] is None else geometry

    def tile(self, side: int) -> int:
        """A configured tile side raised to ``min_tile`` and cut down to the window grid."""
        side = max(side, self.min_tile)
        return side - side % self.grid


OnResult = Callable[[np.ndarray, "np.ndarray | None"], None]  # the upscaled RGB and alpha, before encoding


@dataclass(frozen=True)
class Result:
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    model: str = ""  # the manifest name of the IR that ran
    variant: str = "clean"  # "clean" or "jpeg"
    choice: str = ""  # why that variant ran, a sentence for the job record
    network: str = "edsr"  # "edsr" or "rlfn"


@dataclass(frozen=True)
class Options:
    """Runtime choices; None means the environment's default (see runtime.py)."""

    precision: str | None = None
    tile: int | None = (
        None  # one tile side for every image; None: per image, the best of runtime.tile_sizes()
    )
    # "auto": the JPEG-aware model for a lossy file below compression.JPEG_QUALITY_THRESHOLD, else the clean
    # one (an array has no file, so auto means clean); "clean" or "compressed" force one (see compression.py).
    source: str = "auto"
    # "replicate", "reflect" or "zero" (the network's own padding), see tiling.BORDERS; None: the network's.
    border: str | None = None
    back_projection: int | None = None  # rounds; None: by the variant and the input's quality (rounds())
    input_quality: int | None = (
        None  # an array's JPEG quality when the caller knows it (a file's header says)
    )
    network: str | None = None  # "edsr" or "rlfn"; None: models.default_network()


@dataclass(frozen=True)
class Plan:
    """A checked request: the model that will run and how."""

    variant: str
    precision: str
    tiles: tuple[int, ...]
    model: str
    choice: str
    rounds: int  # of back-projection
    network: str = "edsr"
    geometry: Geometry = Geometry()


def _checked(scale: int, options: Options, found: Compression | None = None) -> Plan:
    """Refuse a bad request and find its model (hashes checked, nothing compiled). Raises EngineError."""
    if scale not in SCALES:
        raise EngineError(f"Scale x{scale} is not offered; choose x2, x3 or x4.")
    # Imported here so that processes which only validate requests (the web app) never load OpenVINO.
    from upscale_worker.engine import models, runtime

    network = options.network or models.default_network()
    models.check_network(network, scale, runtime.models_dir())
    try:
        choice = compression.choose(
            options.source, found, models.has_variant(scale, "jpeg", runtime.models_dir(), network)
        )
    except ValueError as e:
        raise EngineError(str(e)) from None
    precision = options.precision or runtime.precision(scale, choice.variant, network)
    model = runtime.checked_model(runtime.models_dir(), scale, choice.variant, precision, network)
    geometry = Geometry.of(model.entry, options.border)
    tiles = tuple(geometry.tile(t) for t in ((options.tile,) if options.tile else runtime.tile_sizes()))
    if min(tiles) - 2 * geometry.overlap < geometry.grid:
        raise EngineError(
            f"The tile must be larger than {2 * geometry.overlap + geometry.grid - 1} pixels "
            "(its overlap on both sides)."
        )
    quality = found.quality if found is not None and found.lossy else options.input_quality
    return Plan(
        choice.variant,
        precision,
        tiles,
        model.entry["name"],
        choice.reason,
        rounds(choice.variant, quality) if options.back_projection is None else options.back_projection,
        network,
        geometry,
    )


def rounds(variant: str, quality: int | None) -> int:
    """Rounds of back-projection after the ``variant`` model for an input of JPEG-equivalent ``quality``
    (None: lossless or unknown); see BACK_PROJECTION."""
    if variant == "clean":
        return BACK_PROJECTION
    return JPEG_BACK_PROJECTION if quality is not None and quality >= JPEG_BACK_PROJECTION_QUALITY else 0


def _tiled(
    rgb: np.ndarray,
    scale: int,
    plan: Plan,
    options: Options,
    progress: Progress,
    cancelled: Callable[[], bool],
) -> np.ndarray:
    """Upscale with the tile shape that computes the fewest pixels for this image (compiled on first use)."""
    from upscale_worker.engine import runtime

    g = plan.geometry
    w, h = computed_size(rgb.shape[1], rgb.shape[0], g)
    tile = best_tile(w, h, plan.tiles, g.overlap, g.grid)
    infer = runtime.infer_function(
        scale, plan.variant, plan.precision, min(h, tile), min(w, tile), plan.network
    )
    return upscale_tiled(
        rgb,
        scale,
        infer,
        tile,
        g.overlap,
        progress,
        cancelled,
        g.pad,
        g.border,
        plan.rounds,
        g.grid,
        g.min_window,
    )


def computed_size(width: int, height: int, geometry: Geometry = Geometry()) -> tuple[int, int]:
    """The (width, height) the tiling cuts into windows for a width x height image: padded and put on the
    window grid as ``geometry`` says (tiling.on_grid)."""
    g = geometry
    return tuple(on_grid(n + 2 * g.pad, g.grid, g.min_window) for n in (width, height))  # type: ignore[return-value]


def upscale_array(
    rgb: np.ndarray,
    scale: int,
    options: Options = Options(),
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """H x W x 3 uint8 (or uint16) RGB -> the same, ``scale`` times larger (the variant: options.source,
    where auto means clean; back-projection: rounds() for options.input_quality unless options says)."""
    return _tiled(rgb, scale, _checked(scale, options), options, progress, cancelled)


def upscale_file(
    src: str | Path | BinaryIO,
    dst: str | Path,
    scale: int = 4,
    fmt: str = "png",
    quality: int = 95,
    keep_metadata: bool = False,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
    options: Options = Options(),
    on_result: OnResult = lambda rgb, alpha: None,
) -> Result:
    """Read ``src``, upscale it and write ``dst`` as ``fmt`` (png, jpeg or webp).

    ``on_result(rgb, alpha)`` sees the upscaled pixels before they are encoded (alpha None when opaque),
    e.g. to make previews without decoding ``dst`` again; it must not change them. The model variant is
    chosen from the file's header by ``options.source`` (see compression.py); the Result says which ran.
    """
    if fmt not in pixels.OUTPUT_FORMATS:
        raise EngineError(f"Output format {fmt!r} is not supported; choose PNG, JPEG or WebP.")
    data = src.read() if hasattr(src, "read") else Path(src).read_bytes()
    plan = _checked(scale, options, _compression(data))  # before decoding: a missing model fails at once
    picture = pixels.load(io.BytesIO(data))
    limits.check_output(
        *picture.size, scale, fmt, limits.NO_LIMITS
    )  # the format's side limit, before the work
    rgb = _tiled(pixels.bleed(picture.rgb, picture.alpha), scale, plan, options, progress, cancelled)
    result = picture.with_pixels(rgb, pixels.upscale_alpha(picture.alpha, scale))
    on_result(result.rgb, result.alpha)
    pixels.save(result, dst, fmt, quality, keep_metadata)
    return Result(picture.size, result.size, plan.model, plan.variant, plan.choice, plan.network)


def _compression(data: bytes) -> Compression | None:
    """The file's compression from its header, or None for what Pillow cannot open (pixels.load says why)."""
    try:
        return compression.inspect(data)
    except ValueError:
        return None
