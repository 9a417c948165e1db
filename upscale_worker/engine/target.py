"""A size asked for instead of a scale: a width, a height or a longest side, in pixels or as a print length at
a DPI. The engine runs the smallest scale whose output reaches it, then resizes down to exactly it (pixels.py,
``resize``). Plain arithmetic, cheap to import: the web process checks targets without loading the engine.

Conversions (said in docs/pictures.md):
- a print length becomes pixels as ``floor(length / unit_per_inch * dpi + 0.5)`` (round half up), with 2.54
  cm and 25.4 mm to the inch exactly: 30 cm at 300 DPI -> 3543.307 -> 3543 pixels;
- the other side keeps the picture's aspect: ``floor(other * target / side + 0.5)`` in integers (round half
  up), at least 1 pixel: 1920x1080 to a width of 3840 -> 3840x2160, 1000x667 to 3000 -> 3000x2001.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from upscale_worker.engine.errors import EngineError

SIDES = ("width", "height", "long_side")
SIDE_WORDS = {"width": "wide", "height": "high", "long_side": "on the longest side"}
# Units a target length may be given in, and how many of them make an inch (None: pixels).
UNITS: dict[str, Decimal | None] = {
    "px": None,
    "in": Decimal(1),
    "cm": Decimal("2.54"),
    "mm": Decimal("25.4"),
}
MAX_DPI = 10_000  # a print density beyond any printer; keeps the arithmetic and the PNG pHYs field sane
MAX_TARGET = 1_000_000  # pixels a side, far beyond any limit; the limits name what fits


class TargetTooSmall(EngineError):
    """The target is not larger than the picture: upscaling cannot reach it by shrinking."""

    code = "target_too_small"


@dataclass(frozen=True)
class Target:
    """``pixels`` (> 0) on ``side`` (one of SIDES) of the picture as displayed; ``dpi``: the density the
    result says (the one a print size implies), None to keep the input's."""

    side: str
    pixels: int
    dpi: float | None = None

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise EngineError(f"Unknown target side {self.side!r}; choose {', '.join(SIDES)}.")
        if not 1 <= self.pixels <= MAX_TARGET:
            raise EngineError(f"A target must be 1 to {MAX_TARGET:,} pixels, not {self.pixels}.")
        if self.dpi is not None and not 0 < self.dpi <= MAX_DPI:
            raise EngineError(f"A DPI must be above 0 and at most {MAX_DPI:,}, not {self.dpi:g}.")

    def along_width(self, width: int, height: int) -> bool:
        """Whether the target measures the width of a ``width`` x ``height`` picture (a square's long side is
        its width)."""
        return self.side == "width" or (self.side == "long_side" and width >= height)

    def measured(self, width: int, height: int) -> tuple[int, int]:
        """(the side the target measures, the other side) of a ``width`` x ``height`` picture."""
        return (width, height) if self.along_width(width, height) else (height, width)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The exact (width, height) of the result for a ``width`` x ``height`` picture: the target on its
        side, the other side scaled by the same ratio, rounded half up, at least 1 (module docstring)."""
        side, other = self.measured(width, height)
        scaled = max(1, (2 * other * self.pixels + side) // (2 * side))
        return (self.pixels, scaled) if self.along_width(width, height) else (scaled, self.pixels)

    def reached_by(self, width: int, height: int, scale: int) -> bool:
        return self.measured(width, height)[0] * scale >= self.pixels

    def describe(self) -> str:
        """ "3840 pixels wide", "3543 pixels on the longest side (at 300 DPI)"."""
        at = f" (at {self.dpi:g} DPI)" if self.dpi else ""
        return f"{self.pixels} pixels {SIDE_WORDS[self.side]}{at}"

    def as_fields(self) -> dict:
        """Plain values for a row or a JSON plan; ``Target.of_fields`` reads them back."""
        return {"target_side": self.side, "target_pixels": self.pixels, "target_dpi": self.dpi}

    @classmethod
    def of_fields(cls, side: str, pixels: int | None, dpi: float | None) -> Target | None:
        """The Target that ``as_fields`` wrote, or None for empty fields (no target)."""
        return cls(side, int(pixels), dpi) if side and pixels else None


def from_length(
    side: str, length: str | float | Decimal, unit: str = "px", dpi: float | None = None
) -> Target:
    """A Target from a length on ``side`` in ``unit`` (px, in, cm, mm) and an optional ``dpi`` (required for a
    print unit; with pixels it only sets the result's density). Raises EngineError with a sentence."""
    if unit not in UNITS:
        raise EngineError(f"Unknown unit {unit!r}; use {', '.join(UNITS)}.")
    try:
        value = Decimal(str(length))
    except InvalidOperation:
        raise EngineError(f"{length!r} is not a length.") from None
    if not value.is_finite() or value <= 0:
        raise EngineError(f"A target length must be above 0, not {length}.")
    per_inch = UNITS[unit]
    if per_inch is None:
        if value != value.to_integral_value():
            raise EngineError(f"A target in pixels is a whole number, not {length}.")
        return Target(side, int(value), dpi)
    if dpi is None:
        raise EngineError(f"A print size in {unit} needs a DPI (e.g. 300) to become pixels.")
    if not 0 < dpi <= MAX_DPI:
        raise EngineError(f"A DPI must be above 0 and at most {MAX_DPI:,}, not {dpi:g}.")
    pixels = int((value / per_inch * Decimal(str(dpi))).to_integral_value(ROUND_HALF_UP))
    if pixels < 1:
        raise EngineError(f"{length} {unit} at {dpi:g} DPI is less than one pixel.")
    return Target(side, pixels, dpi)


def parse_length(text: str) -> tuple[Decimal, str]:
    """ "3840" -> (3840, "px"); "30cm", "11.8 in", "300mm", "3840px" -> (number, unit). Raises EngineError."""
    text = text.strip().lower()
    unit = next((u for u in UNITS if text.endswith(u)), "px")
    number = text.removesuffix(unit).strip()
    try:
        return Decimal(number), unit
    except InvalidOperation:
        raise EngineError(f"{text!r} is not a length; write 3840, 3840px, 30cm, 300mm or 11.8in.") from None


def smallest_scale(
    target: Target, width: int, height: int, scales: list[int] | tuple[int, ...]
) -> int | None:
    """The smallest of ``scales`` whose output of a ``width`` x ``height`` picture reaches ``target`` (None:
    none does). Raises TargetTooSmall when the picture already has the target's size or more."""
    side = target.measured(width, height)[0]
    if target.pixels <= side:
        raise TargetTooSmall(
            f"The picture is already {side} pixels on that side ({width}x{height}); a target must be larger "
            f"than the picture: ask for more than {side} pixels, or a scale."
        )
    return min((s for s in scales if target.reached_by(width, height, s)), default=None)
