"""The engine's public calls: arrays for evaluation, files for the CLI and the Celery task."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np

from upscale_worker.engine import compression, costs, limits, pixels
from upscale_worker.engine.compression import Compression
from upscale_worker.engine.config import current
from upscale_worker.engine.errors import Cancelled, EngineError
from upscale_worker.engine.target import Target, smallest_scale
from upscale_worker.engine.tiling import (
    BORDERS,
    Grid,
    Progress,
    WindowCost,
    best_window,
    on_grid,
    run_window,
    source_of,
    window_grid,
)
from upscale_worker.engine.vocabulary import SCALES

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
    def of(cls, entry: dict, border: str | None = None) -> Geometry:
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
    output_size: tuple[int, int]  # the file written: the target's size when one was asked for
    model: str = ""  # the manifest name of the IR that ran
    variant: str = "clean"  # "clean" or "jpeg"
    choice: str = ""  # why that variant ran, a sentence for the job record
    network: str = "edsr"  # "edsr" or "rlfn"
    scale: int = 0  # the scale the network ran at
    target: Target | None = None  # the size asked for, when the network's output was resized to it


@dataclass(frozen=True)
class Options:
    """Runtime choices; None means the environment's default (see runtime.py)."""

    precision: str | None = None
    tile: int | None = None  # one tile side for every image; None: per image, a tile or a fitted window
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
    fitted: bool = True  # windows fitted to each picture too (False: options.tile forces one side)
    model_sha: str = ""  # the IR's weights' sha256: the window cost table's key (costs.py)


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
        not options.tile,
        model.entry["sha256"]["bin"],
    )


def rounds(variant: str, quality: int | None) -> int:
    """Rounds of back-projection after the ``variant`` model for an input of JPEG-equivalent ``quality``
    (None: lossless or unknown); see BACK_PROJECTION."""
    if variant == "clean":
        return BACK_PROJECTION
    return JPEG_BACK_PROJECTION if quality is not None and quality >= JPEG_BACK_PROJECTION_QUALITY else 0


def computed_size(width: int, height: int, geometry: Geometry = Geometry()) -> tuple[int, int]:
    """The (width, height) the tiling cuts into windows for a width x height image: padded and put on the
    window grid as ``geometry`` says (tiling.on_grid)."""
    g = geometry
    return on_grid(width + 2 * g.pad, g.grid, g.min_window), on_grid(height + 2 * g.pad, g.grid, g.min_window)


def upscale_array(
    rgb: np.ndarray,
    scale: int,
    options: Options = Options(),
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """H x W x 3 uint8 (or uint16) RGB -> the same, ``scale`` times larger (the variant: options.source,
    where auto means clean; back-projection: rounds() for options.input_quality unless options says)."""
    prepared = _prepared(rgb, _pinned(rgb.shape[1], rgb.shape[0], scale, _checked(scale, options)))
    return upscale_prepared(prepared, progress, cancelled)


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
    target: Target | None = None,
) -> Result:
    """Read ``src``, upscale it and write ``dst`` as ``fmt`` (png, jpeg, webp, avif or tiff).

    With a ``target``, ``scale`` must reach it (limits.scale_for_target chooses the smallest that does) and
    the network's output is resized down to exactly ``target.size()`` (pixels.resize) before it is written.

    ``on_result(rgb, alpha)`` sees the upscaled pixels before they are encoded (alpha None when opaque),
    e.g. to make previews without decoding ``dst`` again; it must not change them. The model variant is
    chosen from the file's header by ``options.source`` (see compression.py); the Result says which ran.
    """
    data = src.read() if hasattr(src, "read") else Path(src).read_bytes()
    prepared = prepare_file(data, scale, fmt, options, cancelled=cancelled, target=target)
    rgb = upscale_prepared(prepared, progress, cancelled)
    return finish_file(prepared, rgb, dst, fmt, quality, keep_metadata, on_result)


# --- One job in parts: plan once, run any subset of windows anywhere, assemble -----------------------------
# upscale_file() is prepare_file() + upscale_prepared() + finish_file(). A job shared among processes runs
# prepare_file() on each (the coordinator without a Pinned, the helpers with the coordinator's), then
# run_windows() on its share; the coordinator assembles the interiors and finishes. Each window is computed
# by the same code with the same compiled shape, precision and float type, so the result equals a whole run.


@dataclass(frozen=True)
class Pinned:
    """What every window of one job runs, chosen once: plain values (``dataclasses.asdict`` and
    ``Pinned(**d)`` carry it through JSON), so that helpers on other hosts run the coordinator's plan."""

    scale: int
    variant: str
    precision: str  # f32, bf16 or int8
    inference: str  # the float type the precision's float layers run in: f32 or bf16 (runtime.py)
    win_h: int  # the window chosen for this image (tiling.best_window): height and width in input pixels
    win_w: int
    border: str
    rounds: int  # of back-projection
    model: str
    choice: str
    network: str = "edsr"
    pad: int = (
        PAD  # the network's window geometry (Geometry): border width, overlap, window grid, smallest side
    )
    overlap: int = OVERLAP
    step: int = 1
    min_window: int = 1
    # The size asked for (target.Target's fields; "" and 0: none): the coordinator resizes the assembled
    # output to it once, before encoding; the windows are the same either way.
    target_side: str = ""
    target_pixels: int = 0
    target_dpi: float | None = None

    @property
    def target(self) -> Target | None:
        return Target.of_fields(self.target_side, self.target_pixels, self.target_dpi)

    @classmethod
    def from_dict(cls, plan: dict) -> Pinned:
        """The plan from its JSON form (``dataclasses.asdict``). A plan pinned before windows were fitted to
        the picture names one square ``tile``: it becomes (tile, tile), so a helper of a newer release still
        takes parts of a job an older coordinator split (a rolling upgrade). Raises TypeError on unknown keys."""
        plan = dict(plan)
        if "tile" in plan:
            plan["win_h"] = plan["win_w"] = plan.pop("tile")
        return cls(**plan)


@dataclass(frozen=True)
class Prepared:
    """A decoded picture and its pinned plan: ``source`` is the bled RGB padded for the border, ``cut`` its
    windows (tiling.Grid; ``cut.total`` of them)."""

    picture: pixels.Picture
    source: np.ndarray
    cut: Grid
    pinned: Pinned


def prepare_file(
    data: bytes,
    scale: int,
    fmt: str = "png",
    options: Options = Options(),
    pinned: Pinned | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    target: Target | None = None,
) -> Prepared:
    """Check the request, decode ``data`` (any readable format) and plan its windows, or take ``pinned``
    (another process's plan for the same file, whose scale and target it must match). ``target``: the size
    the result is resized to, which ``scale`` must reach. Nothing is compiled yet.
    Raises EngineError for a bad request, a missing model or an unreadable or too large picture (a target
    not larger than the picture: TargetTooSmall), Cancelled when ``cancelled()`` turns True while the file is
    decoded."""
    if fmt not in pixels.OUTPUT_FORMATS:
        raise EngineError(f"Output format {fmt!r} is not supported; {pixels.WRITABLE}.")
    if pinned is not None and pinned.scale != scale:
        raise EngineError(f"The pinned plan is for x{pinned.scale}, not x{scale}.")
    if pinned is not None and target is not None and pinned.target != target:
        raise EngineError("The pinned plan is for another target size.")
    target = pinned.target if pinned is not None else target
    plan = None if pinned else _checked(scale, options, _compression(data))  # a missing model fails at once
    picture = pixels.load(io.BytesIO(data), cancelled=cancelled)
    _check_size(picture.size, scale, fmt, target)  # the format's side limit, before work
    if pinned is None:
        assert plan is not None
        pinned = replace(_pinned(*picture.size, scale, plan), **(target.as_fields() if target else {}))
    return _prepared(pixels.bleed(picture.rgb, picture.alpha), pinned, picture)


def _check_size(size: tuple[int, int], scale: int, fmt: str, target: Target | None) -> None:
    """The output format's side limit on what will be written (the target's size when one is asked, which
    ``scale`` must reach). Raises TooLarge, TargetTooSmall or EngineError."""
    if target is None:
        limits.check_output(*size, scale, fmt, limits.NO_LIMITS)
        return
    smallest_scale(target, *size, (scale,))  # raises TargetTooSmall
    if not target.reached_by(*size, scale):
        raise EngineError(f"x{scale} of a {size[0]}x{size[1]} picture does not reach {target.describe()}.")
    width, height = target.size(*size)
    problem = limits.final_problem(width, height, fmt)
    if problem:
        raise limits.TooLarge(f"The result would be {width}x{height}, and {problem}.")


def run_windows(
    prepared: Prepared,
    indices: Iterable[int],
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[int, np.ndarray]]:
    """(index, interior) for each window in ``indices``: the upscaled kept pixels (sH' x sW' x 3 of the
    picture's dtype) that go to ``prepared.cut.kept(index)``. ``cancelled()`` is asked before each window
    (raises Cancelled); ``progress(done, total)`` counts within ``indices``."""
    from upscale_worker.engine import runtime

    indices, pin, cut = list(indices), prepared.pinned, prepared.cut
    infer = runtime.infer_function(
        pin.scale, pin.variant, pin.precision, cut.win_h, cut.win_w, pin.inference, pin.network
    )
    progress(0, len(indices))
    for done, index in enumerate(indices, start=1):
        if cancelled():
            raise Cancelled()
        yield index, run_window(prepared.source, cut, index, infer, pin.rounds, prepared.source.dtype)
        progress(done, len(indices))


def upscale_prepared(
    prepared: Prepared,
    progress: Progress = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> np.ndarray:
    """Every window of ``prepared``, assembled: the upscaled RGB (H*s x W*s x 3, the picture's dtype)."""
    return assemble(prepared, run_windows(prepared, range(prepared.cut.total), progress, cancelled))


def assemble(prepared: Prepared, interiors: Iterable[tuple[int, np.ndarray]] | Mapping[int, np.ndarray]):
    """The upscaled RGB from (index, interior) pairs (or a mapping) covering every window exactly once.
    Raises EngineError when a window is missing or an interior has the wrong shape."""
    cut, s = prepared.cut, prepared.pinned.scale
    out = np.empty((cut.height * s, cut.width * s, 3), prepared.source.dtype)
    pairs = interiors.items() if isinstance(interiors, Mapping) else interiors
    placed = set()
    for index, interior in pairs:
        target = out[cut.kept(index)]
        if interior.shape != target.shape:
            raise EngineError(f"Window {index} has shape {interior.shape}, expected {target.shape}.")
        target[...] = interior
        placed.add(index)
    if len(placed) != cut.total:
        raise EngineError(f"{cut.total - len(placed)} of {cut.total} windows are missing.")
    return out


def finish_file(
    prepared: Prepared,
    rgb: np.ndarray,
    dst: str | Path,
    fmt: str = "png",
    quality: int = 95,
    keep_metadata: bool = False,
    on_result: OnResult = lambda rgb, alpha: None,
) -> Result:
    """Upscale the alpha (if any), resize both to the pinned target (if any: pixels.resize, its DPI the
    target's when it has one), call ``on_result`` and write ``dst`` with the picture's metadata."""
    picture, pin = prepared.picture, prepared.pinned
    alpha = pixels.upscale_alpha(picture.alpha, pin.scale)
    target = pin.target
    if target is not None:
        size = target.size(*picture.size)
        rgb, alpha = pixels.resize(rgb, size), None if alpha is None else pixels.resize(alpha, size)
        if target.dpi:  # the print's density, in every field that says one
            exif = pixels.with_exif_density(picture.exif, target.dpi)
            picture = replace(picture, dpi=(target.dpi, target.dpi), exif=exif)
    result = picture.with_pixels(rgb, alpha)
    on_result(result.rgb, result.alpha)
    pixels.save(result, dst, fmt, quality, keep_metadata)
    return Result(
        prepared.picture.size, result.size, pin.model, pin.variant, pin.choice, pin.network, pin.scale, target
    )


def _pinned(width: int, height: int, scale: int, plan: Plan) -> Pinned:
    """The plan for one width x height picture: the window costing least (a tile, or fitted to the picture
    where ``plan.fitted``; weighed by this host's cost table when it has one, else by pixels), this CPU's
    float type, the network's window geometry."""
    from upscale_worker.engine import runtime

    g = plan.geometry
    inference = runtime.inference_type(plan.precision).get_type_name()
    win_h, win_w = best_window(
        *computed_size(width, height, g),
        plan.tiles,
        g.overlap,
        g.grid,
        current().window_area if plan.fitted else 0,
        _window_cost(plan, inference),
        max(min(plan.tiles), g.min_tile),
    )
    return Pinned(
        scale,
        plan.variant,
        plan.precision,
        inference,
        win_h,
        win_w,
        g.border,
        plan.rounds,
        plan.model,
        plan.choice,
        plan.network,
        g.pad,
        g.overlap,
        g.grid,
        g.min_window,
    )


def _window_cost(plan: Plan, inference: str) -> WindowCost | None:
    """Milliseconds per window from this host's cost table for the plan's model (costs.py), or None (choose
    by pixels) when it has none."""
    from upscale_worker.engine import runtime

    table = costs.lookup(
        current().window_costs, costs.key(runtime.cpu_name(), plan.model_sha, inference, runtime.threads())
    )
    return table.window_ms if table else None


def _prepared(rgb: np.ndarray, pinned: Pinned, picture: pixels.Picture | None = None) -> Prepared:
    p = pinned
    cut = window_grid(
        rgb.shape[0], rgb.shape[1], p.scale, (p.win_h, p.win_w), p.overlap, p.pad, p.step, p.min_window
    )
    picture = picture or pixels.Picture(rgb, None, False)
    return Prepared(picture, source_of(rgb, cut, p.border), cut, pinned)


def _compression(data: bytes) -> Compression | None:
    """The file's compression from its header, or None for what Pillow cannot open (pixels.load says why)."""
    try:
        return compression.inspect(data)
    except ValueError:
        return None
