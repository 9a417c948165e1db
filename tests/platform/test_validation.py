"""Uploads are checked from the header: magic bytes, an allow-list, bytes and pixels."""

import pytest

from tests.conftest import image_bytes, media_files, upload_file
from tests.odd_images import mpo, sof_patched
from tests.platform.hostile import HOSTILE, cut_jpeg, png_bomb, png_chunk_bomb, scan_bomb
from webapp.jobs.models import Job
from webapp.jobs.validation import Invalid, read_header

pytestmark = pytest.mark.django_db


def post(client, data, name="x.png", **options):
    return client.post(
        "/api/v1/jobs", {"image": upload_file(name, data), "scale": 2, **options}, format="multipart"
    )


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_it_accepts_the_allowed_formats(alice_api, fmt):
    assert post(alice_api, image_bytes(20, 10, fmt)).status_code == 201


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_it_refuses_hostile_files_and_stores_nothing(alice_api, kind):
    r = post(alice_api, HOSTILE[kind]())
    assert r.status_code == 400, r.content
    message = r.json().get("detail") or r.json()["image"][0]
    assert message.endswith(".")
    assert not Job.objects.exists() and media_files() == []


def test_it_refuses_a_pixel_bomb_from_its_header_quickly(alice_api):
    import time

    data = png_bomb()
    assert len(data) < 5000
    started = time.monotonic()
    r = post(alice_api, data)
    assert time.monotonic() - started < 1
    assert r.status_code == 400 and "megapixels" in r.json()["detail"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: scan_bomb(2000, 2000, 30_000, scan=2), "more than 100 scans"),  # 400 KB
        (lambda: scan_bomb(4000, 4000, 30_000), "more than 20 times over"),  # 2 minutes of a core
        (png_chunk_bomb, "more than 50,000 chunks"),  # 24 MB: 41 s in Pillow's chunk walk
        (cut_jpeg, "truncated"),  # 642 bytes declaring 4000x4000
    ],
)
def test_it_refuses_hostile_structures_before_decoding_within_seconds(alice_api, make, message):
    import time

    data = make()
    started = time.monotonic()
    r = post(alice_api, data, "hostile.jpg")
    assert time.monotonic() - started < 3
    assert r.status_code == 400 and r.json()["code"] == "invalid" and message in r.json()["detail"]
    assert not Job.objects.exists() and media_files() == []


def test_it_accepts_a_progressive_jpeg_with_a_few_scans_more_than_usual(alice_api):
    assert post(alice_api, scan_bomb(64, 64, 80, scan=2), "progressive.jpg").status_code == 201


def test_it_accepts_a_jpeg_cut_in_its_last_scan_that_browsers_show(alice_api):
    data = image_bytes(256, 256, "JPEG")
    assert post(alice_api, data[:-40] + b"\xff\xd9", "nearly.jpg").status_code == 201


def test_it_accepts_a_png_whose_text_inflates_past_pillows_limit(alice_api):
    import zlib

    from tests.platform.hostile import chunk

    data = image_bytes(20, 10)
    text = chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"x" * 2_000_000))
    r = post(alice_api, data[:33] + text + data[33:])
    assert r.status_code == 201, r.content


def test_it_says_the_input_limit_in_pixels(alice_api, settings):
    settings.MAX_INPUT_MEGAPIXELS = 0.001
    r = post(alice_api, image_bytes(40, 30))
    assert r.json()["detail"] == "The image is 40x30 (0.0 megapixels); the limit is 0.001 megapixels."


def test_it_names_the_largest_scale_that_fits(alice_api, settings, tmp_path):
    (tmp_path / "manifest.json").write_text('{"models": [{"scale": 2}, {"scale": 3}, {"scale": 4}]}')
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"
    settings.MAX_OUTPUT_MEGAPIXELS = 0.05  # 100x100 is 0.04 MP at x2, 0.09 MP at x3
    r = post(alice_api, image_bytes(100, 100), scale=4)
    assert r.status_code == 400
    assert "the limit is 0.05 megapixels. The largest scale that fits is x2." in r.json()["detail"]


def test_it_limits_webp_output_to_16383_pixels_a_side(alice_api, settings):
    settings.MAX_INPUT_MEGAPIXELS = settings.MAX_OUTPUT_MEGAPIXELS = 1000
    r = post(alice_api, png_bomb(9000, 1), format="webp")
    assert r.status_code == 400 and "16383" in r.json()["detail"]


def test_it_refuses_files_over_the_byte_limit(alice_api, settings):
    settings.MAX_UPLOAD_BYTES = 100
    r = post(alice_api, image_bytes(40, 40))
    assert r.status_code == 400 and "limit" in r.json()["detail"]


def test_it_reads_the_header_without_decoding():
    import io

    header = read_header(io.BytesIO(png_bomb(300, 200)))
    assert (header.format, header.width, header.height) == ("png", 300, 200)


def test_it_raises_invalid_for_garbage():
    import io

    with pytest.raises(Invalid):
        read_header(io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"\0" * 100))


def all_scales(settings, tmp_path):
    (tmp_path / "manifest.json").write_text('{"models": [{"scale": 2}, {"scale": 3}, {"scale": 4}]}')
    settings.MODEL_MANIFEST = tmp_path / "manifest.json"


def test_it_refuses_a_jpeg_result_wider_than_jpeg_allows_before_storing(alice_api, settings, tmp_path):
    all_scales(settings, tmp_path)
    r = post(alice_api, png_bomb(16376, 1), scale=4, format="jpeg")
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "JPEG output cannot exceed 65500 pixels a side (16376x1 at x4 would be 65504x4). "
        "The largest scale that fits is x3."
    )
    assert not Job.objects.exists() and media_files() == []
    assert post(alice_api, png_bomb(16376, 1), scale=3, format="jpeg").status_code == 201


def jpeg(width=24, height=40, **save):
    return image_bytes(width, height, "JPEG", **save)


def test_it_records_the_displayed_size_of_a_turned_photo(alice_api):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 24x40, shown 40x24
    r = post(alice_api, jpeg(exif=exif.tobytes()), "turned.jpg")
    assert r.status_code == 201
    assert (r.json()["input_width"], r.json()["input_height"]) == (40, 24)


def test_it_refuses_a_truncated_jpeg(alice_api):
    data = jpeg(64, 64)
    r = post(alice_api, data[: len(data) * 2 // 3], "cut.jpg")
    assert r.status_code == 400 and r.json()["detail"] == "The file is truncated."
    assert not Job.objects.exists() and media_files() == []


def test_it_accepts_a_multi_picture_jpeg_and_still_refuses_animations(alice_api):
    r = post(alice_api, mpo(size=(20, 10)), "stereo.jpg")
    assert r.status_code == 201, r.content
    assert (r.json()["input_width"], r.json()["input_height"]) == (20, 10)
    for kind in ("animated.png", "animated.webp"):
        assert "Animated images are not supported" in post(alice_api, HOSTILE[kind]()).json()["detail"]


def test_it_names_jpeg_variants_it_cannot_decode(alice_api):
    r = post(alice_api, sof_patched(marker=0xC3), "lossless.jpg")
    assert r.status_code == 400 and r.json()["detail"].startswith("Lossless JPEG (SOF3) is not supported")
    r = post(alice_api, sof_patched(precision=12), "deep.jpg")
    assert r.status_code == 400 and r.json()["detail"].startswith("12-bit JPEG is not supported")
