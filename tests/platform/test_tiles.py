"""Zoom tiles: the deep-zoom pyramids the worker writes beside a result, served to the owner only, and
covered like results by delete, expiry, the storage sweep, the storage quota and a killed attempt's claim."""

import io
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from tests.conftest import image_bytes, media_files
from tests.platform.factories import make_job
from webapp.jobs import tiles
from webapp.jobs.models import Job
from webapp.jobs.services import storage_folder, sweeper, web, worker

pytestmark = pytest.mark.django_db


def gradient(width, height, dtype=np.uint8):
    y, x = np.mgrid[0:height, 0:width]
    top = 65535 if dtype == np.uint16 else 255
    rgb = np.dstack([x * top // width, y * top // height, (x + y) * top // (width + height)])
    return rgb.astype(dtype)


def pyramid(rgb, alpha=None):
    written = {}
    info = tiles.write_pyramid(rgb, alpha, "after", lambda name, data: written.__setitem__(name, data))
    return info, written


def decoded(data):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGBA" if im.mode == "RGBA" else "RGB"))


def test_it_cuts_a_pyramid_whose_last_level_is_the_picture_at_full_size():
    rgb = gradient(600, 300)
    info, written = pyramid(rgb)
    assert info == {"width": 600, "height": 300, "ext": "jpg"}
    assert tiles.levels(600, 300)[0] == (1, 1) and tiles.levels(600, 300)[-1] == (600, 300)
    top = len(tiles.levels(600, 300)) - 1  # 10: ceil(log2(600))
    assert sorted(n for n in written if n.startswith(f"after-{top}-")) == [
        f"after-{top}-{c}_{r}.jpg" for c in range(3) for r in range(2)
    ]
    assert len(written) == sum(-(-w // 254) * -(-h // 254) for w, h in tiles.levels(600, 300))
    tile = decoded(written[f"after-{top}-1_0.jpg"])  # columns 253..508 with the overlap, rows 0..254
    assert tile.shape == (255, 256, 3)
    assert np.abs(tile.astype(int) - rgb[0:255, 253:509]).mean() < 2


def test_a_transparent_picture_makes_webp_tiles_with_alpha_and_16_bits_make_8_bit_tiles():
    alpha = np.full((40, 30), 128, np.uint8)
    info, written = pyramid(gradient(30, 40), alpha)
    assert info["ext"] == "webp"
    assert decoded(written["after-6-0_0.webp"]).shape == (40, 30, 4)
    info, written = pyramid(gradient(30, 40, np.uint16))
    assert np.abs(decoded(written["after-6-0_0.jpg"]).astype(int) - gradient(30, 40)).mean() < 3


def test_the_view_finds_only_tile_names():
    assert tiles.stored_name("tiles/abc/", "after/12/3_4.jpg") == "tiles/abc/after-12-3_4.jpg"
    for bad in ("after/12/3_4.png", "../x/1/1_1.jpg", "after/1/1_1.jpg/..", "input/1/0_0.jpg"):
        assert tiles.stored_name("tiles/abc/", bad) is None


def with_tiles(job, width=64, height=48):
    """Give a done job tiles as its worker would: the two pyramids in a folder of their own."""
    folder = storage_folder("tiles")
    sizes = []

    def write(name, data):
        default_storage.save(folder + name, ContentFile(data))
        sizes.append(len(data))

    info = {"before": tiles.write_pyramid(gradient(width // 2, height // 2), None, "before", write)}
    info["after"] = tiles.write_pyramid(gradient(width, height), None, "after", write)
    job.tiles, job.tiles_info, job.tiles_bytes = folder, info, sum(sizes)
    job.save()
    return job


def test_the_owner_gets_a_tile_and_anyone_else_a_404(alice, alice_web, bob, client):
    job = with_tiles(make_job(alice, "done"))
    r = alice_web.get(f"/jobs/{job.id}/tiles/after/6/0_0.jpg")
    assert (
        r.status_code == 200
        and r["Content-Type"] == "image/jpeg"
        and r["X-Content-Type-Options"] == "nosniff"
    )
    assert decoded(b"".join(r.streaming_content)).shape == (48, 64, 3)
    assert alice_web.get(f"/jobs/{job.id}/tiles/after/6/9_9.jpg").status_code == 404
    assert alice_web.get(f"/jobs/{job.id}/tiles/after/6/0_0.png").status_code == 404
    client.force_login(bob)
    assert client.get(f"/jobs/{job.id}/tiles/after/6/0_0.jpg").status_code == 404


def test_the_job_page_opens_the_pyramids_or_the_previews_of_an_older_job(alice, alice_web):
    job = with_tiles(make_job(alice, "done"))
    page = alice_web.get(f"/jobs/{job.id}").content.decode()
    assert f"/jobs/{job.id}/tiles/after/" in page and "openseadragon.min.js" in page
    older = make_job(alice, "done")
    page = alice_web.get(f"/jobs/{older.id}").content.decode()
    assert "/tiles/" not in page and f"/jobs/{older.id}/result-preview" in page


def test_deleting_a_job_deletes_its_tiles_and_their_folder(alice, settings):
    job = with_tiles(make_job(alice, "done"))
    assert media_files("tiles")
    web.delete(job)
    assert media_files("tiles") == [] and not (Path(settings.MEDIA_ROOT) / job.tiles).exists()


def test_expiry_deletes_the_tiles_and_their_bytes(alice, settings):
    settings.RETENTION_DAYS = 7
    job = with_tiles(make_job(alice, "done", created_at=timezone.now() - timedelta(days=8)))
    assert sweeper.expire() == 1
    job.refresh_from_db()
    assert media_files("tiles") == [] and job.tiles == "" and job.tiles_bytes == 0


def test_the_storage_quota_counts_the_tiles(alice):
    job = make_job(alice, "done")
    before = web.storage_used(alice)
    with_tiles(job)
    assert web.storage_used(alice) == before + job.tiles_bytes > before


def test_the_storage_sweep_removes_an_old_tile_folder_no_job_names(alice, settings):
    settings.JOB_LEASE_SECONDS = 60
    named = with_tiles(make_job(alice, "done")).tiles
    orphan, young = with_tiles(make_job(alice, "done")).tiles, with_tiles(make_job(alice, "done")).tiles

    Job.objects.filter(tiles__in=[orphan, young]).update(tiles="")  # as if their writers had been cut off
    then = time.time() - 61
    for folder in (named, orphan):
        for name in default_storage.listdir(folder)[1]:
            os.utime(default_storage.path(folder + name), (then, then))

    assert sweeper.sweep_storage() == 1
    left = {p.parent.name for p in media_files("tiles")}
    assert left == {named.split("/")[1], young.split("/")[1]}


def test_a_claim_removes_the_tiles_a_killed_attempt_stored(alice):
    folder = with_tiles(make_job(alice, "done")).tiles
    job = make_job(
        alice,
        "running",
        attempts=1,
        worker="elsewhere:1",
        attempt_files=[folder],
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    assert worker.claim(job.id) is not None
    assert [p for p in media_files("tiles") if p.parent.name == folder.split("/")[1]] == []


def test_the_worker_makes_the_before_pyramid_from_the_upright_input(alice, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: upright, the 30x20 picture is 20x30
    data = image_bytes(30, 20, "JPEG", exif=exif.tobytes())
    job = make_job(alice, "running")
    job.input_file.save("upright.jpg", ContentFile(data))
    info = worker.make_tiles(job, gradient(40, 60), None, tmp_path / "tiles")
    assert info["before"] == {"width": 20, "height": 30, "ext": "jpg"}
    assert info["after"] == {"width": 40, "height": 60, "ext": "jpg"}
    assert (tmp_path / "tiles" / "before-5-0_0.jpg").exists() and (
        tmp_path / "tiles" / "after-6-0_0.jpg"
    ).exists()
