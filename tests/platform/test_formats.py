"""The pictures people have, through the API to a done x2 result: each file written by a library the product
does not write that format with (OpenCV for BMP; Pillow for GIF and AVIF, which the product never writes)."""

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


def bmp(rgb):
    return cv2.imencode(".bmp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def with_pillow(fmt, **save):
    def write(rgb):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, **save)
        return buf.getvalue()

    return write


@pytest.mark.parametrize(
    ("name", "write", "tolerance"),
    [("a.bmp", bmp, 3), ("a.gif", with_pillow("GIF"), 3), ("a.avif", with_pillow("AVIF", quality=95), 8)],
)
def test_it_upscales_each_format_at_x2_to_the_right_size_and_content(alice_api, name, write, tolerance):
    rgb = picture()
    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file(name, write(rgb)), "scale": 2}, format="multipart"
    )
    assert r.status_code == 201, r.content
    job = wait_for(r.json()["id"])
    assert job.status == "done", job.error
    result = alice_api.get(f"/api/v1/jobs/{job.id}/result")
    with Image.open(io.BytesIO(b"".join(result.streaming_content))) as im:
        assert im.size == (80, 48)
        back = cv2.resize(np.asarray(im.convert("RGB")), (40, 24), interpolation=cv2.INTER_AREA)
    inner = (slice(2, 10), slice(2, 18))  # a quarter away from its edges
    for rows in (inner[0], slice(14, 22)):
        for cols in (inner[1], slice(22, 38)):
            assert np.abs(back[rows, cols].astype(int) - rgb[rows, cols]).mean() < tolerance


def test_it_refuses_an_animated_gif_saying_so(alice_api):
    frames = [Image.fromarray(picture()), Image.fromarray(picture()[::-1])]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    r = alice_api.post(
        "/api/v1/jobs", {"image": upload_file("a.gif", buf.getvalue()), "scale": 2}, format="multipart"
    )
    assert r.status_code == 400 and r.json()["code"] == "unsupported_format"
    assert r.json()["detail"] == "Animated images are not supported (this one has 2 frames)."
