"""Faithful pixels: modes, bit depth, orientation, colour profile, metadata and output formats."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin

from tests.engine.conftest import encode, gradient
from upscale_worker.engine import EngineError, pixels, upscale_file
from upscale_worker.engine.pixels import from_model, orient, to_model

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def xmp_of(im: Image.Image) -> str:
    return str(im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or "")


def upscale(data: bytes, tmp_path, fmt="png", **kw) -> Image.Image:
    dst = tmp_path / f"out.{fmt}"
    upscale_file(io.BytesIO(data), dst, scale=2, fmt=fmt, **kw)
    return Image.open(dst)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_model_range_round_trips_exactly(dtype):
    img = gradient(9, 5, dtype=dtype)
    model_input = to_model(img)
    assert model_input.shape == (1, 3, 5, 9) and model_input.max() <= 255.0
    assert np.array_equal(from_model(model_input, dtype), img)


def test_it_clips_and_rounds_at_the_end():
    out = from_model(
        np.array([-3.0, 0.4, 0.6, 254.5, 300.0], np.float32).reshape(1, 1, 1, 5).repeat(3, 1), np.uint8
    )
    assert out[0, :, 0].tolist() == [0, 0, 1, 254, 255]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(("channels", "grey"), [(3, False), (4, False), (3, True), (4, True)])
def test_png_output_holds_exactly_the_pixels_given(tmp_path, channels, grey, dtype):
    img = gradient(13, 2 * pixels.PNG_BAND_ROWS + 7, channels=channels, dtype=dtype)  # three bands of rows
    rgb, alpha = img[..., :3], img[..., 3] if channels == 4 else None
    if grey:
        rgb = np.repeat(rgb[..., :1], 3, axis=2)
    pixels.save(pixels.Picture(rgb.copy(), alpha, grey), tmp_path / "out.png", "png", 95, False)
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)  # libpng: grey + alpha comes as BGRA
    expected = (
        rgb[..., 0] if grey and alpha is None else np.dstack([rgb, alpha]) if alpha is not None else rgb
    )
    assert back.dtype == dtype
    assert np.array_equal(
        back
        if back.ndim == 2
        else cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA if channels == 4 else cv2.COLOR_BGR2RGB),
        expected,
    )
    depth, colour_type = (tmp_path / "out.png").read_bytes()[24:26]  # IHDR: grey or colour, alpha or not
    assert (depth, colour_type) == (8 * img.itemsize, (0 if grey else 2) + (4 if alpha is not None else 0))


@pytest.mark.parametrize("icc", [None, SRGB])
def test_png_is_streamed_to_any_file_name_and_nothing_is_left_beside_it(tmp_path, icc):
    img = gradient(13, 7)
    pixels.save(pixels.Picture(img.copy(), None, False, icc=icc), tmp_path / "result.part", "png", 95, False)
    assert [p.name for p in tmp_path.iterdir()] == ["result.part"]
    with Image.open(tmp_path / "result.part") as back:
        assert back.format == "PNG" and back.info.get("icc_profile") == icc
        assert np.array_equal(np.asarray(back), img)


def test_an_unwritable_png_destination_fails_with_a_sentence(tmp_path):
    with pytest.raises(EngineError, match="could not be written as PNG"):
        pixels.save(
            pixels.Picture(gradient(13, 7), None, False), tmp_path / "missing" / "out.png", "png", 95, False
        )


def test_grey_stays_grey(tmp_path):
    out = upscale(encode(gradient(12, 8, channels=1)), tmp_path)
    assert out.mode == "L" and out.size == (24, 16)


def test_palette_becomes_rgb_and_keeps_its_transparency(tmp_path):
    palette = Image.fromarray(gradient(12, 8)).quantize(16)
    assert upscale(encode(palette), tmp_path).mode == "RGB"
    palette.info["transparency"] = 0
    assert upscale(encode(palette, transparency=0), tmp_path).mode == "RGBA"


def test_alpha_is_upscaled_smoothly(tmp_path):
    rgba = gradient(32, 8, channels=4)
    rgba[..., 3] = np.linspace(0, 255, 32).astype(np.uint8)[None, :]  # a soft edge
    out = np.asarray(upscale(encode(rgba), tmp_path))
    assert out.shape == (16, 64, 4)
    steps = np.abs(np.diff(out[..., 3].astype(int), axis=1))
    assert steps.max() <= 8  # input steps are ~8.2 per pixel: smooth is <= one step per output pixel


def test_opaque_alpha_costs_nothing_and_stays_an_alpha_channel(tmp_path):
    rgba = gradient(12, 8, channels=4)
    rgba[..., 3] = 255
    seen = []
    out = upscale(encode(rgba), tmp_path, on_result=lambda rgb, alpha: seen.append(alpha))
    assert seen == [None]  # nothing upscaled for it
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].min() == 255


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_png_stays_16_bit(tmp_path, channels):
    img = gradient(12, 8, channels=channels, dtype=np.uint16)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), img if channels == 1 else img[..., ::-1])
    upscale_file(src, tmp_path / "out.png", scale=2)
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape[:2] == (16, 24) and out.ndim == (2 if channels == 1 else 3)
    assert np.any(out % 257)  # not just 8-bit values stretched


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation):
    img = gradient(5, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im = Image.open(io.BytesIO(encode(img, exif=exif.tobytes())))
    assert np.array_equal(orient(img, orientation), np.asarray(ImageOps.exif_transpose(im)))


def test_exif_orientation_is_applied_and_reset(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    out = upscale(encode(gradient(20, 10), "JPEG", exif=exif.tobytes()), tmp_path, keep_metadata=True)
    assert out.size == (20, 40)
    assert out.getexif()[0x0112] == 1


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_the_icc_profile_is_kept_even_without_metadata(tmp_path, fmt):
    out = upscale(encode(gradient(12, 8), "PNG", icc_profile=SRGB), tmp_path, fmt, keep_metadata=False)
    assert out.info.get("icc_profile") == SRGB


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_metadata_is_kept_or_stripped_on_request(tmp_path, fmt):
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # Make
    exif[0x0132] = "2024:05:01 12:00:00"  # DateTime
    data = encode(gradient(12, 8), "JPEG", exif=exif.tobytes(), xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    kept = upscale(data, tmp_path, fmt, keep_metadata=True)
    assert kept.getexif()[0x010F] == "Camera maker" and kept.getexif()[0x0132] == "2024:05:01 12:00:00"
    assert "adobe:ns:meta" in xmp_of(kept)
    stripped = upscale(data, tmp_path, fmt, keep_metadata=False)
    assert not stripped.getexif() and not xmp_of(stripped)


def test_jpeg_output_is_4_4_4_at_the_requested_quality(tmp_path):
    data = encode(gradient(32, 32))
    high = upscale(data, tmp_path, "jpeg", quality=95)
    assert JpegImagePlugin.get_sampling(high) == 0
    size_high = (tmp_path / "out.jpeg").stat().st_size
    upscale(data, tmp_path, "jpeg", quality=30)
    assert (tmp_path / "out.jpeg").stat().st_size < size_high


def test_jpeg_output_flattens_alpha_onto_white(tmp_path):
    rgba = gradient(12, 8, channels=4)
    rgba[..., 3] = 0
    out = np.asarray(upscale(encode(rgba), tmp_path, "jpeg"))
    assert out.min() >= 250


def test_webp_output(tmp_path):
    out = upscale(encode(gradient(12, 8)), tmp_path, "webp")
    assert out.format == "WEBP" and out.size == (24, 16)


def test_animated_images_give_their_first_frame(tmp_path):
    frames = [Image.fromarray(gradient(12, 8)), Image.new("RGB", (12, 8), "red")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    assert upscale(buf.getvalue(), tmp_path).size == (24, 16)


@pytest.mark.parametrize("key", [0, 1])
def test_one_bit_line_art_whose_white_or_black_is_transparent_keeps_it(key):
    ink = np.zeros((8, 8), bool)
    ink[2:6, 2:6] = True
    buf = io.BytesIO()
    Image.fromarray(ink).convert("1").save(buf, "PNG", transparency=key)  # a tRNS key on a 1-bit image
    picture = pixels.load(io.BytesIO(buf.getvalue()))
    assert picture.alpha is not None
    assert (picture.alpha == 0).tolist() == (ink == bool(key)).tolist()


def test_a_grey_profile_never_goes_into_an_rgb_webp(tmp_path):
    from tests.odd_images import grey_profile

    grey = np.full((16, 16, 3), 128, np.uint8)  # linear light 0.5 in the profile: 188 in sRGB
    picture = pixels.Picture(grey, None, grey=True, icc=grey_profile(1.0))
    pixels.save(picture, tmp_path / "out.webp", "webp", 100, False)
    pixels.save(picture, tmp_path / "out.jpg", "jpeg", 100, False)
    with Image.open(tmp_path / "out.webp") as im:
        assert im.info.get("icc_profile") in (None, b"") and im.mode == "RGB"
        assert np.abs(np.asarray(im).astype(int) - 188).max() <= 2
    with Image.open(tmp_path / "out.jpg") as im:  # a grey JPEG keeps its grey profile and values
        assert (
            im.mode == "L" and im.info["icc_profile"] == picture.icc and abs(np.asarray(im).mean() - 128) < 1
        )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
@pytest.mark.parametrize("out", ["png", "jpeg"])
def test_the_density_is_kept_so_a_print_keeps_its_size_times_the_scale(tmp_path, fmt, out):
    buf = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buf, fmt, dpi=(300, 150))
    picture = pixels.load(io.BytesIO(buf.getvalue()))
    pixels.save(picture, tmp_path / f"out.{out}", out, 90, False)
    with Image.open(tmp_path / f"out.{out}") as im:
        assert np.allclose(im.info["dpi"], (300, 150), atol=0.02)  # PNG: whole pixels per metre


def test_the_density_turns_with_the_picture():
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buf, "JPEG", dpi=(300, 150), exif=exif.tobytes())
    picture = pixels.load(io.BytesIO(buf.getvalue()))
    assert picture.size == (4, 8) and picture.dpi == (150.0, 300.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize(("channels", "grey"), [(3, False), (4, False), (3, True), (4, True)])
def test_tiff_output_holds_exactly_the_pixels_given(tmp_path, monkeypatch, channels, grey, dtype):
    from upscale_worker.engine import tiff

    monkeypatch.setattr(tiff, "STRIP_BYTES", 1000)  # several strips, each its own deflate stream
    img = gradient(13, 47, channels=channels, dtype=dtype)
    rgb, alpha = img[..., :3], img[..., 3] if channels == 4 else None
    if grey:
        rgb = np.repeat(rgb[..., :1], 3, axis=2)
    pixels.save(pixels.Picture(rgb.copy(), alpha, grey), tmp_path / "out.tif", "tiff", 95, False)
    with Image.open(tmp_path / "out.tif") as im:  # Pillow reads the tags; libtiff decodes (8-bit)
        assert im.tag_v2[259] == 8 and im.tag_v2[317] == 2  # Adobe Deflate, horizontal differencing
        assert im.tag_v2.get(338) == ((2,) if alpha is not None else None)  # alpha labelled unassociated
        deep_grey_alpha = dtype == np.uint16 and grey and alpha is not None  # goes as RGBA (tiff.py)
        assert im.tag_v2[262] == (1 if grey and not deep_grey_alpha else 2)
        back = np.asarray(im) if dtype == np.uint8 else None
    if dtype == np.uint16:  # Pillow reads 16-bit colour as 8-bit: OpenCV (libtiff)
        back = cv2.imread(str(tmp_path / "out.tif"), cv2.IMREAD_UNCHANGED)
        if back.ndim == 3:
            back = cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA if back.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    colour = rgb if not grey or (dtype == np.uint16 and alpha is not None) else rgb[..., 0]
    expected = colour if alpha is None else np.dstack([colour, alpha])
    assert back.dtype == dtype and np.array_equal(back, expected)


def test_tiff_output_keeps_the_profile_and_density_and_xmp_on_request(tmp_path):
    xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"
    picture = pixels.Picture(gradient(12, 8), None, False, icc=SRGB, xmp=xmp, dpi=(300.0, 150.0))
    pixels.save(picture, tmp_path / "kept.tif", "tiff", 95, True)
    pixels.save(picture, tmp_path / "stripped.tif", "tiff", 95, False)
    with Image.open(tmp_path / "kept.tif") as kept, Image.open(tmp_path / "stripped.tif") as stripped:
        assert kept.info["icc_profile"] == SRGB == stripped.info["icc_profile"]
        assert kept.info["dpi"] == (300, 150) == stripped.info["dpi"]
        assert "adobe:ns:meta" in xmp_of(kept) and not xmp_of(stripped)


def test_a_16_bit_picture_upscaled_to_tiff_stays_16_bit(tmp_path):
    img = gradient(12, 8, dtype=np.uint16)
    _, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    upscale_file(io.BytesIO(png.tobytes()), tmp_path / "out.tif", scale=2, fmt="tiff")
    back = cv2.imread(str(tmp_path / "out.tif"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (16, 24, 3)
    assert np.any(back % 257)  # values that 8 bits cannot hold


def test_an_unknown_output_format_names_every_format_offered(tmp_path):
    with pytest.raises(EngineError, match="choose PNG, JPEG, WebP, AVIF or TIFF"):
        pixels.save(pixels.Picture(gradient(4, 4), None, False), tmp_path / "out.bmp", "bmp", 95, False)


def test_a_tiff_result_past_classic_tiffs_4_gb_is_refused_before_any_work():
    from upscale_worker.engine import limits

    with pytest.raises(limits.TooLarge, match="the limit for TIFF is 500 megapixels"):
        limits.check_output(16_000, 10_000, 2, "tiff", limits.NO_LIMITS)  # 640 MP: up to 5 GB as 16-bit RGBA
    limits.check_output(16_000, 10_000, 2, "png", limits.NO_LIMITS)
