"""The pictures people have, through the API to a done x2 result: each file written by a library the product
does not write that format with (OpenCV for BMP and TIFF; pillow-heif for HEIC; Pillow for GIF, AVIF and
TIFF, which the product never writes)."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import upload_file, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("worker")]


def picture(width=40, height=24) -> np.ndarray:
    """H x W x 3 uint8: four flat quarters of distinct colours, so a turned or mixed-up result shows."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[: height // 2, : width // 2] = (200, 40, 40)
    rgb[: height // 2, width // 2 :] = (40, 200, 40)
    rgb[height // 2 :, : width // 2] = (40, 40, 200)
    rgb[height // 2 :, width // 2 :] = (230, 230, 60)
    return rgb


def opencv(ext, depth=8):
    def write(rgb):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if depth == 16:
            bgr = bgr.astype(np.uint16) * 257
        return cv2.imencode(ext, bgr)[1].tobytes()

    return write


def grey16_tiff(rgb):
    return cv2.imencode(".tiff", rgb[..., 0].astype(np.uint16) * 257)[1].tobytes()


def with_pillow(fmt, mode="RGB", **save):
    def write(rgb):
        buf = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buf, fmt, **save)
        return buf.getvalue()

    return write


def heic(rgb):
    import pillow_heif  # the encoder, in requirements-dev only; not registered as Pillow's HEIF opener

    buf = io.BytesIO()
    pillow_heif.from_pillow(Image.fromarray(rgb)).save(buf, quality=95)
    return buf.getvalue()


def heic10_turned(rgb):
    """A 10-bit HEIC stored on its side with an irot transform (90 degrees): libheif turns it back."""
    import pillow_heif

    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned 90 degrees clockwise; pillow-heif writes this as irot, EXIF reset
    stored = np.ascontiguousarray(np.rot90(rgb, -1)).astype(np.uint16) * 257
    heif = pillow_heif.from_bytes(mode="RGB;16", size=stored.shape[1::-1], data=stored.tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=-1, exif=exif.tobytes())
    return buf.getvalue()


GREY = np.repeat(cv2.cvtColor(picture(), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
FILES = {  # name: (writer, the input, tolerance in levels, the result PNG's bit depth)
    "a.bmp": (opencv(".bmp"), picture(), 3, 8),
    "a.heic": (heic, picture(), 8, 8),
    "deep.heic": (heic10_turned, picture(), 8, 16),
    "a.gif": (with_pillow("GIF"), picture(), 3, 8),
    "a.avif": (with_pillow("AVIF", quality=95), picture(), 8, 8),
    "lzw8.tif": (opencv(".tiff"), picture(), 3, 8),
    "lzw16.tif": (opencv(".tiff", 16), picture(), 3, 16),
    "grey16.tif": (grey16_tiff, GREY, 3, 16),
    "deflate.tif": (with_pillow("TIFF", compression="tiff_deflate"), picture(), 3, 8),
    "jpeg.tif": (with_pillow("TIFF", compression="jpeg", quality=95), picture(), 6, 8),
    "rgba.tif": (with_pillow("TIFF", mode="RGBA", compression="tiff_lzw"), picture(), 3, 8),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_it_upscales_each_format_at_x2_to_the_right_size_and_content(alice_api, name):
    write, rgb, tolerance, depth = FILES[name]
    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file(name, write(rgb)), "scale": 2}, format="multipart"
    )
    assert r.status_code == 201, r.content
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    result = b"".join(alice_api.get(f"/api/v1/jobs/{job.id}/result").streaming_content)
    assert result[24] == depth  # the PNG's bit depth: a 16-bit input stays 16-bit
    out = cv2.imdecode(np.frombuffer(result, np.uint8), cv2.IMREAD_UNCHANGED)  # 16 bits kept, unlike Pillow
    assert out.shape[:2] == (48, 80)
    out = np.dstack([out] * 3) if out.ndim == 2 else cv2.cvtColor(out[..., :3], cv2.COLOR_BGR2RGB)
    back = cv2.resize(
        np.rint(out / (257 if depth == 16 else 1)).astype(np.uint8), (40, 24), interpolation=cv2.INTER_AREA
    )
    for rows in (slice(2, 10), slice(14, 22)):  # each quarter, away from its edges
        for cols in (slice(2, 18), slice(22, 38)):
            assert np.abs(back[rows, cols].astype(int) - rgb[rows, cols]).mean() < tolerance


def post_refused(client, name, data):
    r = client.post("/api/v1/jobs", {"image": upload_file(name, data), "scale": 2}, format="multipart")
    assert r.status_code == 400 and r.json()["code"] == "unsupported_format"
    return r.json()["detail"]


def test_it_refuses_an_animated_gif_or_a_multi_page_tiff_saying_so(alice_api):
    frames = [Image.fromarray(picture()), Image.fromarray(picture()[::-1])]
    for fmt, name in (("GIF", "a.gif"), ("TIFF", "a.tif")):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        detail = post_refused(alice_api, name, buf.getvalue())
        assert (
            detail
            == {
                "GIF": "Animated images are not supported (this one has 2 frames).",
                "TIFF": "Multi-page TIFFs are not supported; save the page you want as a TIFF of its own.",
            }[fmt]
        )


@pytest.mark.parametrize("head", [b"\xff\x0a\xfa\x7f", b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "])
def test_it_refuses_jpeg_xl_by_name(alice_api, head):
    detail = post_refused(alice_api, "a.jxl", head + bytes(64))
    assert detail.startswith("JPEG XL is not supported yet; save it as PNG, JPEG, WebP")


def result_of(api, data) -> tuple[str, bytes]:
    """(content type, bytes) of the result of a job posted with ``data``, once done."""
    r = api.post("/api/v1/jobs", data, format="multipart")
    assert r.status_code == 201, r.content
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    result = api.get(f"/api/v1/jobs/{job.id}/result")
    return result["Content-Type"], b"".join(result.streaming_content)


def test_it_writes_an_avif_result(alice_api):
    rgb = picture()
    data = {
        "image": upload_file("a.png", with_pillow("PNG")(rgb)),
        "scale": 2,
        "format": "avif",
        "quality": 95,
    }
    content_type, content = result_of(alice_api, data)
    assert content_type == "image/avif"
    with Image.open(io.BytesIO(content)) as im:
        assert im.format == "AVIF" and im.size == (80, 48)
        back = cv2.resize(np.asarray(im.convert("RGB")), (40, 24), interpolation=cv2.INTER_AREA)
    assert np.abs(back[2:10, 2:18].astype(int) - rgb[2:10, 2:18]).mean() < 8


def test_it_writes_a_16_bit_tiff_result_from_a_16_bit_input(alice_api):
    rgb = picture()
    data = {"image": upload_file("a.png", opencv(".png", 16)(rgb)), "scale": 2, "format": "tiff"}
    content_type, content = result_of(alice_api, data)
    assert content_type == "image/tiff"
    out = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)  # libtiff: 16 bits kept
    assert out.dtype == np.uint16 and out.shape == (48, 80, 3)
    back = cv2.resize(cv2.cvtColor(out, cv2.COLOR_BGR2RGB), (40, 24), interpolation=cv2.INTER_AREA) / 257
    assert np.abs(back[2:10, 2:18] - rgb[2:10, 2:18]).mean() < 3


def test_avif_results_have_a_megapixel_cap_of_their_own(alice_api, settings):
    from tests.platform.hostile import png_bomb

    settings.MAX_INPUT_MEGAPIXELS = settings.MAX_OUTPUT_MEGAPIXELS = 1000
    r = alice_api.post(
        "/api/v1/jobs",
        {"image": upload_file("a.png", png_bomb(3000, 3000)), "scale": 2, "format": "avif"},
        format="multipart",
    )
    assert r.status_code == 400 and r.json()["code"] == "too_large"
    assert "the limit for AVIF is 25 megapixels" in r.json()["detail"]
    from upscale_worker.engine import limits

    limits.check(3000, 3000, 2, "png", limits.Limits(1000, 1000))  # the same result as PNG fits
