"""Size limits in pixels, the arithmetic shared by the site's upload check and the CLI (no Django here).

Input and output megapixels are the caller's (the site's settings and the CLI read MAX_INPUT_MEGAPIXELS and
MAX_OUTPUT_MEGAPIXELS); each output format also has a side limit of its own that no setting lifts:
libjpeg writes at most 65,500 pixels a side (JPEG_MAX_DIMENSION), WebP 16,383 (its 14-bit size fields),
PNG 2^31 - 1 (its 4-byte fields), AVIF 32,768 (what libavif decodes by default), TIFF 2^32 - 1. AVIF and TIFF
results also have a megapixel cap of their own (FORMAT_MEGAPIXELS): AVIF's encoder is slow, TIFF's offsets
32 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.target import Target, smallest_scale
from upscale_worker.engine.vocabulary import SCALES

DEFAULT_INPUT_MEGAPIXELS = 16.0
DEFAULT_OUTPUT_MEGAPIXELS = 100.0
MAX_SIDE = {"png": 2**31 - 1, "jpeg": 65_500, "webp": 16_383, "avif": 32_768, "tiff": 2**32 - 1}
FORMAT_NAMES = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "tiff": "TIFF"}
# AVIF encoding (libaom through Pillow) is slow: 3 MP took 5.4 s on the 2-core AMD EPYC under load, so its
# results are capped below the general output limit (25 MP: about 45 s there). A classic TIFF's offsets are
# 32 bits: 500 MP of 16-bit RGBA is 4.0 GB even where deflate cannot shrink it, under the 4.29 GB they reach.
FORMAT_MEGAPIXELS = {"avif": 25.0, "tiff": 500.0}


class TooLarge(EngineError):
    """The input, or the output at the asked scale, exceeds a limit; the message says which and what fits."""

    code = "too_large"


@dataclass(frozen=True)
class Limits:
    """Megapixel limits (floats, 1 MP = 10^6 pixels); None lifts one (format side limits always hold)."""

    input_megapixels: float | None = DEFAULT_INPUT_MEGAPIXELS
    output_megapixels: float | None = DEFAULT_OUTPUT_MEGAPIXELS


NO_LIMITS = Limits(None, None)


def megapixels(width: int, height: int) -> float:
    return width * height / 1e6


def output_fits(width: int, height: int, scale: int, fmt: str, limits: Limits) -> bool:
    """Whether ``width`` x ``height`` upscaled ``scale`` times fits the output limits and ``fmt``'s side limit."""
    cap = output_cap(fmt, limits)
    return (cap is None or megapixels(width, height) * scale * scale <= cap) and max(
        width, height
    ) * scale <= MAX_SIDE[fmt]


def output_cap(fmt: str, limits: Limits) -> float | None:
    """The output megapixels allowed in ``fmt``: the limit, or the format's own cap where lower (None: none)."""
    caps = [c for c in (limits.output_megapixels, FORMAT_MEGAPIXELS.get(fmt)) if c is not None]
    return min(caps, default=None)


def largest_scale(
    width: int, height: int, fmt: str, limits: Limits, scales: list[int] | tuple[int, ...]
) -> int | None:
    """The largest of ``scales`` whose output fits, or None."""
    return max((s for s in scales if output_fits(width, height, s, fmt, limits)), default=None)


def check_input(width: int, height: int, limits: Limits) -> None:
    """Raise TooLarge when the input has more megapixels than allowed."""
    cap, mp = limits.input_megapixels, megapixels(width, height)
    if cap is not None and mp > cap:
        raise TooLarge(
            f"The image is {width}x{height} ({mp:.1f} megapixels); the limit is {cap:g} megapixels."
        )


def check_output(
    width: int,
    height: int,
    scale: int,
    fmt: str,
    limits: Limits,
    scales: list[int] | tuple[int, ...] = SCALES,
) -> None:
    """Raise TooLarge, naming the limit and the largest of ``scales`` below ``scale`` that fits, when the
    output of ``width`` x ``height`` at ``scale`` in ``fmt`` does not fit."""
    if output_fits(width, height, scale, fmt, limits):
        return
    fitting = largest_scale(width, height, fmt, limits, [s for s in scales if s < scale])
    hint = (
        f" The largest scale that fits is x{fitting}." if fitting else " No scale fits; use a smaller image."
    )
    out_w, out_h = width * scale, height * scale
    if max(out_w, out_h) > MAX_SIDE[fmt]:
        raise TooLarge(
            f"{FORMAT_NAMES[fmt]} output cannot exceed {MAX_SIDE[fmt]} pixels a side "
            f"({width}x{height} at x{scale} would be {out_w}x{out_h}).{hint}"
        )
    own = f" for {FORMAT_NAMES[fmt]}" if output_cap(fmt, limits) != limits.output_megapixels else ""
    raise TooLarge(
        f"At x{scale} the result would be {out_w}x{out_h} ({megapixels(out_w, out_h):.1f} megapixels); "
        f"the limit{own} is {output_cap(fmt, limits):g} megapixels.{hint}"
    )


def check(
    width: int,
    height: int,
    scale: int,
    fmt: str,
    limits: Limits,
    scales: list[int] | tuple[int, ...] = SCALES,
) -> None:
    """check_input then check_output: every size limit of one request, from the (displayed) size alone."""
    check_input(width, height, limits)
    check_output(width, height, scale, fmt, limits, scales)


# --- a size asked for (target.py): the network's own output and the final result ---------------------------


def final_fits(width: int, height: int, fmt: str) -> bool:
    """Whether a result of exactly ``width`` x ``height`` fits ``fmt``: its side limit and its own megapixel
    cap (AVIF's, its encoder being slow), which bound what is encoded, not what the network computes."""
    return final_problem(width, height, fmt) is None


def final_problem(width: int, height: int, fmt: str) -> str | None:
    """Why a result of exactly ``width`` x ``height`` cannot be written as ``fmt`` (a clause), or None."""
    name, cap = FORMAT_NAMES[fmt], FORMAT_MEGAPIXELS.get(fmt)
    if max(width, height) > MAX_SIDE[fmt]:
        return f"{name} output cannot exceed {MAX_SIDE[fmt]} pixels a side"
    if cap is not None and megapixels(width, height) > cap:
        return f"the limit for {name} is {cap:g} megapixels"
    return None


def network_fits(width: int, height: int, scale: int, limits: Limits) -> bool:
    """Whether the network's own output (``width`` x ``height`` times ``scale``, before any resize) fits the
    output megapixel limit: what the worker computes and holds, whatever it is resized to."""
    cap = limits.output_megapixels
    return cap is None or megapixels(width, height) * scale * scale <= cap


def largest_target(
    width: int, height: int, target: Target, fmt: str, limits: Limits, scales: list[int] | tuple[int, ...]
) -> int | None:
    """The largest number of pixels on ``target``'s side that some scale reaches within the limits (the
    network's output within the megapixel limit, the resized result within ``fmt``'s), or None when none
    reaches beyond the picture itself."""
    side = target.measured(width, height)[0]
    best = None
    for s in sorted(scales):
        if not network_fits(width, height, s, limits):
            continue
        low, high = side, s * side  # low: never a valid target; find the largest fitting one up to high
        while low < high:
            mid = (low + high + 1) // 2
            if final_fits(*replace(target, pixels=mid).size(width, height), fmt):
                low = mid
            else:
                high = mid - 1
        if low > side:
            best = max(best or 0, low)
    return best


def scale_for_target(
    width: int, height: int, target: Target, fmt: str, limits: Limits, scales: list[int] | tuple[int, ...]
) -> int:
    """The smallest of ``scales`` that reaches ``target`` for a ``width`` x ``height`` picture (as displayed)
    within the limits: its network output within the output megapixel limit, the resized result within
    ``fmt``'s. Raises TargetTooSmall (not larger than the picture) or TooLarge, naming the largest target
    that fits."""
    scale = smallest_scale(target, width, height, scales)
    final = target.size(width, height)
    if scale is not None and network_fits(width, height, scale, limits) and final_fits(*final, fmt):
        return scale
    if scale is None:
        side = target.measured(width, height)[0]
        why = f"x{max(scales)} of this {width}x{height} picture reaches {max(scales) * side} pixels"
    elif not network_fits(width, height, scale, limits):
        out_w, out_h = width * scale, height * scale
        why = (
            f"it needs x{scale}, whose output {out_w}x{out_h} ({megapixels(out_w, out_h):.1f} megapixels) "
            f"exceeds the limit of {limits.output_megapixels:g} megapixels"
        )
    else:
        why = f"the result would be {final[0]}x{final[1]}, and {final_problem(*final, fmt)}"
    fitting = largest_target(width, height, target, fmt, limits, scales)
    hint = (
        f" The largest target that fits is {replace(target, pixels=fitting).describe()}."
        if fitting
        else " No target fits; use a smaller image."
    )
    raise TooLarge(f"{target.describe().capitalize()} cannot be made: {why}.{hint}")


def check_target(
    width: int,
    height: int,
    target: Target,
    fmt: str,
    limits: Limits,
    scales: list[int] | tuple[int, ...] = SCALES,
) -> int:
    """check_input then scale_for_target: every size limit of a request for a target; returns the scale."""
    check_input(width, height, limits)
    return scale_for_target(width, height, target, fmt, limits, scales)
