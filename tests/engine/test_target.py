"""A size asked for instead of a scale (issue 21): the arithmetic (print sizes, the other side, the smallest
scale that reaches it, the limits on the network's own output), the exact size and filter of the result, its
density, and the pinned plan that carries it to a job's parts."""

import io
import json
from dataclasses import asdict
from decimal import Decimal

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.engine.conftest import encode, gradient
from upscale_worker.engine import EngineError, limits, pixels
from upscale_worker.engine.api import Pinned, assemble, finish_file, prepare_file, run_windows, upscale_file
from upscale_worker.engine.target import Target, TargetTooSmall, from_length, parse_length, smallest_scale

EDSR, RLFN = (2, 3, 4), (2, 4)


@pytest.mark.parametrize(
    ("length", "unit", "dpi", "pixels"),
    [
        ("30", "cm", 300, 3543),  # 3543.307
        ("10", "in", 300, 3000),
        ("25.4", "mm", 100, 100),
        ("1", "in", 100.5, 101),  # exactly half: rounded up
        ("3840", "px", None, 3840),
    ],
)
def test_it_converts_a_print_size_to_pixels_rounding_half_up(length, unit, dpi, pixels):
    target = from_length("width", length, unit, dpi)
    assert (target.pixels, target.dpi) == (pixels, dpi)


@pytest.mark.parametrize(
    ("length", "unit", "dpi", "message"),
    [
        ("30", "cm", None, "needs a DPI"),
        ("3840.5", "px", None, "whole number"),
        ("0", "px", None, "above 0"),
        ("-3", "cm", 300, "above 0"),
        ("30", "cm", 0, "DPI must be above 0"),
        ("30", "ft", 300, "Unknown unit"),
        ("0.001", "mm", 1, "less than one pixel"),
    ],
)
def test_it_refuses_a_length_it_cannot_convert(length, unit, dpi, message):
    with pytest.raises(EngineError, match=message):
        from_length("width", length, unit, dpi)


def test_it_reads_lengths_with_their_unit():
    assert parse_length("3840") == (3840, "px")
    assert parse_length(" 30cm") == (30, "cm")
    assert parse_length("11.8 in") == (Decimal("11.8"), "in")
    with pytest.raises(EngineError, match="not a length"):
        parse_length("wide")


@pytest.mark.parametrize(
    ("target", "size", "expected"),
    [
        (Target("width", 3840), (1920, 1080), (3840, 2160)),
        (Target("width", 3000), (1000, 667), (3000, 2001)),
        (Target("width", 5), (4, 2), (5, 3)),  # 2.5 rounded half up
        (Target("height", 100), (30, 40), (75, 100)),
        (Target("long_side", 3000), (667, 1000), (2001, 3000)),
        (Target("long_side", 3000), (1000, 667), (3000, 2001)),
        (Target("long_side", 90), (60, 60), (90, 90)),
        (Target("width", 3000), (1000, 1), (3000, 3)),
        (Target("width", 4), (3, 1), (4, 1)),  # 1.33: never below one pixel, never above the ratio
    ],
)
def test_it_keeps_the_aspect_and_rounds_the_other_side_half_up(target, size, expected):
    assert target.size(*size) == expected


@pytest.mark.parametrize(
    ("pixels", "scales", "chosen"),
    [(1001, EDSR, 2), (2000, EDSR, 2), (2001, EDSR, 3), (3001, EDSR, 4), (2001, RLFN, 4), (4001, EDSR, None)],
)
def test_it_chooses_the_smallest_scale_that_reaches_the_target(pixels, scales, chosen):
    assert smallest_scale(Target("width", pixels), 1000, 667, scales) == chosen


@pytest.mark.parametrize("pixels", [1000, 999, 1])
def test_a_target_not_larger_than_the_picture_is_refused(pixels):
    with pytest.raises(TargetTooSmall, match="already 1000 pixels") as refused:
        limits.check_target(1000, 667, Target("width", pixels), "png", limits.Limits())
    assert refused.value.code == "target_too_small"


def test_a_target_beyond_the_largest_scale_names_the_largest_that_fits():
    with pytest.raises(limits.TooLarge) as refused:
        limits.check_target(1000, 667, Target("width", 5000), "png", limits.Limits(), RLFN)
    assert refused.value.code == "too_large"
    assert str(refused.value) == (
        "5000 pixels wide cannot be made: x4 of this 1000x667 picture reaches 4000 pixels. "
        "The largest target that fits is 4000 pixels wide."
    )


def test_the_output_limit_counts_the_networks_output_before_the_resize():
    """9500 wide from 3000x3000 needs x4: 144 MP computed, though the result would be 90 MP (under 100)."""
    cap = limits.Limits(output_megapixels=100)
    with pytest.raises(
        limits.TooLarge, match=r"x4, whose output 12000x12000 \(144.0 megapixels\)"
    ) as refused:
        limits.check_target(3000, 3000, Target("width", 9500), "png", cap)
    assert str(refused.value).endswith("The largest target that fits is 9000 pixels wide.")  # x3: 81 MP
    assert limits.check_target(3000, 3000, Target("width", 9000), "png", cap) == 3


def test_a_formats_own_limits_count_the_resized_result():
    """AVIF's 25 MP cap and WebP's 16,383-pixel side bound what is encoded: the network may compute more."""
    assert (
        limits.check_target(2000, 1500, Target("width", 5000), "avif", limits.Limits()) == 3
    )  # 27 MP -> 18.75
    with pytest.raises(limits.TooLarge, match="WebP output cannot exceed 16383 pixels a side") as refused:
        limits.check_target(5000, 3000, Target("width", 17000), "webp", limits.NO_LIMITS)
    assert str(refused.value).endswith("The largest target that fits is 16383 pixels wide.")
    assert limits.check_target(5000, 3000, Target("width", 16383), "webp", limits.NO_LIMITS) == 4


def test_the_input_limit_still_holds():
    with pytest.raises(limits.TooLarge, match="the limit is 16 megapixels"):
        limits.check_target(5000, 4000, Target("width", 6000), "png", limits.Limits())


def test_it_writes_exactly_the_target_resized_from_the_networks_output(tmp_path):
    """The file is the x2 output shrunk by pixels.resize (Pillow's antialiased Lanczos), not another filter."""
    data = encode(gradient(60, 45))
    whole = upscale_file(io.BytesIO(data), tmp_path / "x2.png", 2)
    result = upscale_file(io.BytesIO(data), tmp_path / "t.png", 2, target=Target("width", 100))
    assert whole.output_size == (120, 90)
    assert (result.output_size, result.scale, result.target) == ((100, 75), 2, Target("width", 100))
    written = np.asarray(Image.open(tmp_path / "t.png"))
    x2 = np.asarray(Image.open(tmp_path / "x2.png"))
    assert written.shape == (75, 100, 3)
    assert np.array_equal(
        written, np.asarray(Image.fromarray(x2).resize((100, 75), Image.Resampling.LANCZOS))
    )
    assert not np.array_equal(written, cv2.resize(x2, (100, 75), interpolation=cv2.INTER_AREA))


def test_a_16_bit_picture_with_alpha_stays_16_bit_and_keeps_its_alpha(tmp_path):
    px = np.dstack([gradient(40, 30, 3, np.uint16), np.full((30, 40), 65535, np.uint16)])
    px[:10, :10, 3] = 0
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(px, cv2.COLOR_RGBA2BGRA))
    assert ok
    upscale_file(io.BytesIO(encoded.tobytes()), tmp_path / "t.png", 2, target=Target("height", 50))
    out = cv2.imread(str(tmp_path / "t.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (50, 67, 4) and out.dtype == np.uint16
    assert out[0, 0, 3] == 0 and out[-1, -1, 3] == 65535
    assert len(np.unique(out[..., :3])) > 256  # values 8 bits cannot hold


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_the_density_is_the_prints_or_else_the_inputs(tmp_path, fmt):
    data = encode(gradient(40, 30), dpi=(72, 72))
    print_size = from_length("width", "7.5", "mm", 254)  # 75 pixels
    upscale_file(io.BytesIO(data), tmp_path / "print", 2, fmt, target=print_size)
    upscale_file(io.BytesIO(data), tmp_path / "pixels", 2, fmt, target=Target("width", 70))
    with Image.open(tmp_path / "print") as im:
        assert im.size == (75, 56) and tuple(round(v) for v in im.info["dpi"]) == (254, 254)
    with Image.open(tmp_path / "pixels") as im:
        assert im.size == (70, 53) and tuple(round(v) for v in im.info["dpi"]) == (72, 72)


def test_kept_exif_says_the_prints_density_too(tmp_path):
    exif = Image.Exif()
    exif[0x011A] = exif[0x011B] = 72
    exif[0x0128] = 2
    exif[0x010F] = "Camera maker"
    data = encode(gradient(40, 30), "JPEG", exif=exif.tobytes(), dpi=(72, 72))
    target = from_length("width", "7.5", "mm", 254)
    upscale_file(io.BytesIO(data), tmp_path / "print.jpg", 2, "jpeg", keep_metadata=True, target=target)
    with Image.open(tmp_path / "print.jpg") as im:
        kept = im.getexif()
        assert tuple(round(v) for v in im.info["jfif_density"]) == (254, 254)
        assert (float(kept[0x011A]), float(kept[0x011B]), kept[0x0128]) == (254.0, 254.0, 2)
        assert kept[0x010F] == "Camera maker"


def test_prepare_refuses_a_target_the_scale_does_not_reach_or_not_larger_than_the_picture():
    data = encode(gradient(40, 30))
    with pytest.raises(EngineError, match="x2 of a 40x30 picture does not reach 81 pixels wide"):
        prepare_file(data, 2, target=Target("width", 81))
    with pytest.raises(TargetTooSmall):
        prepare_file(data, 2, target=Target("height", 30))


def test_the_pinned_plan_carries_the_target_to_a_jobs_parts(tmp_path):
    """Through JSON, as the job row holds it: a helper prepares with the plan alone, the coordinator resizes
    the assembled windows once; the bytes equal a whole run's."""
    data = encode(gradient(150, 110))
    target = from_length("long_side", "2", "in", 100)  # 200 pixels at 100 DPI
    upscale_file(io.BytesIO(data), tmp_path / "whole.png", 2, target=target)
    coordinator = prepare_file(data, 2, target=target)
    plan = json.loads(json.dumps(asdict(coordinator.pinned)))
    helper = prepare_file(data, 2, pinned=Pinned(**plan))
    assert helper.pinned.target == target and coordinator.cut.total >= 2
    every = range(coordinator.cut.total)
    interiors = dict(run_windows(helper, every[1::2])) | dict(run_windows(coordinator, every[::2]))
    result = finish_file(coordinator, assemble(coordinator, interiors), tmp_path / "parts.png")
    assert result.output_size == (200, 147)
    assert (tmp_path / "parts.png").read_bytes() == (tmp_path / "whole.png").read_bytes()
    with pytest.raises(EngineError, match="another target"):
        prepare_file(data, 2, pinned=Pinned(**plan), target=Target("width", 250))


def test_resize_only_shrinks():
    with pytest.raises(EngineError, match="Cannot shrink"):
        pixels.resize(np.zeros((10, 10, 3), np.uint8), (11, 10))
