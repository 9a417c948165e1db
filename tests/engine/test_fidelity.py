"""Issue 11's fidelity classes, each with its right value, through the shipped (trained) models."""

import io
import re
import struct

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from tests.engine.conftest import ROOT, encode, gradient
from tests.odd_images import MALFORMED_EXIF, chunk, cmyk_profile, mpo, png, sof_patched
from upscale_worker.engine import EngineError, upscale_file
from upscale_worker.engine.imresize import imresize

pytestmark = pytest.mark.usefixtures("shipped")
SRGB = ImageCms.createProfile("sRGB")


def upscale(data: bytes, tmp_path, scale=2, fmt="png", **kw) -> Image.Image:
    dst = tmp_path / f"out.{fmt}"
    upscale_file(io.BytesIO(data), dst, scale=scale, fmt=fmt, **kw)
    return Image.open(dst)


def ihdr(path) -> tuple[int, int]:
    """(bit depth, colour type) of a PNG file."""
    data = path.read_bytes()
    return data[24], data[25]


# 1. grey + alpha -------------------------------------------------------------------------------------------


def test_it_keeps_a_1x1_grey_alpha_png_grey_with_alpha(tmp_path):
    out = upscale(encode(Image.new("LA", (1, 1), (128, 255))), tmp_path)
    assert out.size == (2, 2) and ihdr(tmp_path / "out.png") == (8, 4)


def test_it_writes_grey_alpha_as_rgba_webp_and_as_grey_on_white_jpeg(tmp_path):
    data = encode(Image.new("LA", (6, 4), (100, 128)))
    assert upscale(data, tmp_path, fmt="webp").mode == "RGBA"
    jpeg = upscale(data, tmp_path, fmt="jpeg")
    assert jpeg.mode == "L"
    assert abs(np.asarray(jpeg).astype(float).mean() - (100 * 128 + 255 * 127) / 255) <= 2


def test_it_keeps_16_bit_grey_alpha_as_16_bit_grey_alpha(tmp_path):
    la = np.dstack([gradient(8, 6, 1, np.uint16), np.full((6, 8), 40000, np.uint16)])
    upscale(png(la, 4), tmp_path)
    assert ihdr(tmp_path / "out.png") == (16, 4)


# 2. malformed metadata -------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [True, False])
def test_it_upscales_despite_text_where_a_number_belongs_and_drops_those_tags(tmp_path, keep):
    data = encode(gradient(16, 8), "JPEG", exif=MALFORMED_EXIF)
    out = upscale(data, tmp_path, fmt="jpeg", keep_metadata=keep)
    assert out.size == (32, 16)
    exif = out.getexif()
    assert 0x011A not in exif and 0x011B not in exif
    assert (exif.get(0x0128) == 2) is keep  # what was readable is kept on request


def test_metadata_too_large_for_a_jpeg_segment_is_dropped_not_fatal(tmp_path):
    exif = Image.Exif()
    exif[0x010E] = "x" * 70_000  # ImageDescription: a PNG or WebP holds it, one JPEG APP1 segment cannot
    out = upscale(
        encode(gradient(8, 6), "PNG", exif=exif.tobytes()), tmp_path, fmt="jpeg", keep_metadata=True
    )
    assert out.size == (16, 12) and not out.getexif()


# 3. grey transparency key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_grey_key_colour_becomes_transparent(tmp_path, dtype):
    key = 77 if dtype == np.uint8 else 30000
    grey = np.full((12, 24), 2 * key, dtype)
    grey[:, :12] = key
    trns = chunk(b"tRNS", struct.pack(">H", key))
    upscale(png(grey, 0, trns), tmp_path)
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)  # grey + alpha comes as BGRA
    assert out.shape == (24, 48, 4) and ihdr(tmp_path / "out.png") == (8 * grey.itemsize, 4)
    assert out[:, :22, 3].max() == 0 and out[:, 26:, 3].min() == np.iinfo(dtype).max


# 4. transparent edges --------------------------------------------------------------------------------------


def fringe_checks(rgba: np.ndarray, out: np.ndarray, scale: int):
    """(darkest over white, least alpha where every input pixel within 2 output pixels is opaque, most alpha
    where every one is clear)."""
    a = out[..., 3:].astype(float) / 255
    over_white = out[..., :3] * a + 255 * (1 - a)

    def footprint(m):
        return cv2.resize(m.astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)

    within_2 = lambda m: cv2.erode(footprint(m), np.ones((5, 5), np.uint8), borderValue=1).astype(bool)  # noqa: E731
    opaque, clear = within_2(rgba[..., 3] == 255), within_2(rgba[..., 3] == 0)
    assert opaque.any() and clear.any()
    return over_white.min(), out[..., 3][opaque].min(), out[..., 3][clear].max()


def white_square():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6] = 255
    return rgba


def white_disk():
    y, x = np.mgrid[:64, :64]
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[(y - 31.5) ** 2 + (x - 31.5) ** 2 < 24**2] = 255
    return rgba


@pytest.mark.parametrize("make", [white_square, white_disk])
def test_transparent_edges_have_no_dark_fringe_and_alpha_does_not_ring(tmp_path, make):
    rgba = make()
    out = np.asarray(upscale(encode(rgba), tmp_path, scale=4).convert("RGBA"))
    darkest, opaque_alpha, clear_alpha = fringe_checks(rgba, out, 4)
    assert darkest >= 230 and opaque_alpha >= 250 and clear_alpha <= 2


# 5. borders and tiny images --------------------------------------------------------------------------------


@pytest.mark.parametrize("colour", [(200, 100, 50), (20, 230, 240), (255, 0, 0)])  # saturated ones too
@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(1, 1), (1, 64), (64, 1), (2, 2), (9, 9), (150, 100)])
def test_a_flat_image_of_any_size_stays_flat_corners_included(tmp_path, size, scale, colour):
    w, h = size
    out = np.asarray(upscale(encode(Image.new("RGB", size, colour)), tmp_path, scale))
    assert out.shape == (h * scale, w * scale, 3)
    assert np.abs(out.astype(int) - colour).max() <= 2


def training_crop(width: int, height: int) -> np.ndarray:
    img = np.asarray(
        Image.open(ROOT.parent / "shared" / "datasets" / "train" / "Kodak24" / "kodim21.png").convert("RGB")
    )
    return np.ascontiguousarray(img[200 : 200 + height, 300 : 300 + width])


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (9, 9), (1, 40), (40, 2), (64, 48)])
def test_any_result_shrunk_back_matches_its_input(tmp_path, size):
    """MATLAB bicubic back down: a mean absolute difference of at most 2 levels from the input."""
    img = training_crop(*size)
    out = np.asarray(upscale(encode(img), tmp_path, 2))
    back = imresize(out, 1 / 2)
    assert np.abs(back.astype(float) - img).mean() <= 2


# 6. multi-picture JPEG -------------------------------------------------------------------------------------


def test_it_upscales_an_mpos_primary_picture(tmp_path):
    out = np.asarray(upscale(mpo(), tmp_path))
    assert out.shape == (24, 32, 3)
    assert np.abs(out.reshape(-1, 3).mean(0) - (200, 30, 30)).max() <= 3


# 7. a format's side limit ----------------------------------------------------------------------------------


def test_a_jpeg_too_wide_for_its_format_is_refused_before_any_work(tmp_path):
    calls = []
    with pytest.raises(
        EngineError, match=r"JPEG output cannot exceed 65500 pixels a side.*largest scale that fits is x3"
    ):
        upscale_file(
            io.BytesIO(encode(np.zeros((1, 16376, 3), np.uint8))),
            tmp_path / "out.jpg",
            scale=4,
            fmt="jpeg",
            progress=lambda done, total: calls.append(done),
        )
    assert calls == [] and not (tmp_path / "out.jpg").exists()


# 8. orientation --------------------------------------------------------------------------------------------

XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
    '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"><tiff:Orientation>6</tiff:Orientation>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_every_orientation_tag_is_reset_once_the_pixels_are_turned(tmp_path, fmt):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(gradient(24, 40), "JPEG", exif=exif.tobytes(), xmp=XMP.encode())
    out = upscale(data, tmp_path, fmt=fmt, keep_metadata=True)
    assert out.size == (80, 48)
    assert out.getexif()[0x0112] == 1
    xmp = out.info.get("xmp") or out.info.get("XML:com.adobe.xmp")
    xmp = xmp.decode() if isinstance(xmp, bytes) else xmp
    assert (
        'tiff:Orientation="1"' in xmp and "<tiff:Orientation>1</tiff:Orientation>" in xmp and "6" not in xmp
    )


def test_an_xmp_only_orientation_is_applied_too(tmp_path):
    out = upscale(encode(gradient(24, 40), "JPEG", xmp=XMP.encode()), tmp_path)
    assert out.size == (80, 48)


# 11. colour beyond an RGB profile --------------------------------------------------------------------------


def test_cmyk_goes_to_srgb_through_its_embedded_profile(tmp_path):
    icc = cmyk_profile()
    cmyk = Image.new("CMYK", (16, 16), (40, 120, 30, 50))
    data = encode(cmyk, "JPEG", icc_profile=icc, quality=100)
    managed = ImageCms.profileToProfile(
        Image.open(io.BytesIO(data)), ImageCms.ImageCmsProfile(io.BytesIO(icc)), SRGB, outputMode="RGB"
    )
    plain = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1, 3).mean(0)
    expected = np.asarray(managed).reshape(-1, 3).mean(0)
    assert np.abs(plain - expected).max() > 6  # the profile matters for this colour
    out = np.asarray(upscale(data, tmp_path)).reshape(-1, 3).mean(0)
    assert np.abs(out - expected).max() <= 2


@pytest.mark.parametrize("keep", [True, False])
def test_png_colour_chunks_follow_the_icc_rule_and_stay(tmp_path, keep):
    gama, chrm = chunk(b"gAMA", struct.pack(">I", 100000)), chunk(b"cHRM", struct.pack(">8I", *range(8)))
    out = upscale(png(gradient(8, 6), 2, gama + chrm), tmp_path, keep_metadata=keep)
    written = (tmp_path / "out.png").read_bytes()
    assert out.info["gamma"] == 1.0 and gama in written and chrm in written
    assert written.index(gama) < written.index(b"IDAT")


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_a_png_gamma_is_carried_into_formats_without_it_as_srgb_values(tmp_path, fmt):
    """gAMA 1.0 (linear light): 128 is half the light, which sRGB encodes as 188."""
    gama = chunk(b"gAMA", struct.pack(">I", 100000))
    out = np.asarray(upscale(png(np.full((8, 8, 3), 128, np.uint8), 2, gama), tmp_path, fmt=fmt, quality=100))
    assert np.abs(out.astype(int) - 188).max() <= 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (sof_patched(marker=0xC3), "Lossless JPEG (SOF3) is not supported"),
        (sof_patched(precision=12), "12-bit JPEG is not supported"),
    ],
)
def test_unsupported_jpeg_variants_are_named(tmp_path, data, message):
    with pytest.raises(EngineError, match=re.escape(message)):
        upscale_file(io.BytesIO(data), tmp_path / "out.png", scale=2)


def test_the_upload_check_reads_the_displayed_size_wherever_the_orientation_is():
    from upscale_worker.engine import header, limits

    exif = Image.Exif()
    exif[0x0112] = 6
    stored = gradient(24, 40)
    late = png(stored, 2)  # eXIf after the image data, where Pillow finds it only by decoding
    late = late[:-12] + chunk(b"eXIf", exif.tobytes()[6:]) + late[-12:]
    for data in (
        encode(stored, "JPEG", exif=exif.tobytes()),
        encode(stored, "JPEG", xmp=XMP.encode()),
        encode(stored, "WEBP", exif=exif.tobytes()),
        encode(stored, "PNG", exif=exif.tobytes()),
        late,
    ):
        found = header.read_header(io.BytesIO(data), limits.Limits())
        assert (found.width, found.height, found.orientation) == (40, 24, 6)
