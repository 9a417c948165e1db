"""Batches: many files in one request, counts and progress, and a streamed ZIP of the results."""

import io
import os
import zipfile

import pytest
from django.test import override_settings

from tests.conftest import image_bytes, upload_file, wait_for
from tests.platform.factories import make_job
from webapp.integrations import zips
from webapp.integrations.models import Batch
from webapp.jobs.models import Job

pytestmark = pytest.mark.django_db


def post_batch(client, files, **fields):
    return client.post("/api/v1/batches", {"image": files, "scale": 2, **fields}, format="multipart")


def unzip(response):
    data = b"".join(response.streaming_content)
    assert len(data) == int(response["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        return {info.filename: z.read(info) for info in z.infolist()}


def test_a_refused_file_does_not_stop_the_others(alice_api):
    r = post_batch(
        alice_api, [upload_file("a.png"), upload_file("evil.png", data=b"<svg/>"), upload_file("b.png")]
    )
    assert r.status_code == 201, r.content
    batch = r.json()
    assert [j["filename"] for j in batch["jobs"]] == ["a.png", "b.png"]
    assert batch["refused"] == [
        {
            "filename": "evil.png",
            "detail": "This is not a PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF image.",
            "code": "unsupported_format",
        }
    ]
    assert batch["counts"]["queued"] == 2 and batch["progress"] == 0
    got = alice_api.get(f"/api/v1/batches/{batch['id']}").json()
    assert got["counts"] == batch["counts"] and got["download_url"].endswith(
        f"/api/v1/batches/{batch['id']}/download"
    )


def test_a_batch_with_no_accepted_file_stores_nothing(alice_api):
    r = post_batch(alice_api, [upload_file("x.png", data=b"nope")])
    assert r.status_code == 400 and r.json()["code"] == "unsupported_format"
    assert r.json()["image"] == ["x.png: This is not a PNG, JPEG, WebP, HEIC, AVIF, TIFF, BMP or GIF image."]
    assert not Batch.objects.exists() and not Job.objects.exists()


@override_settings(MAX_BATCH_FILES=2)
def test_it_bounds_the_files_of_a_batch(alice_api):
    r = post_batch(alice_api, [upload_file(f"{i}.png") for i in range(3)])
    assert r.status_code == 400 and r.json()["code"] == "too_many_files" and not Job.objects.exists()


def test_the_body_size_guard_knows_the_batch_limit(alice_api, settings):
    settings.MAX_REQUEST_BYTES, settings.MAX_BATCH_REQUEST_BYTES = 1000, 10**6
    assert (
        post_batch(alice_api, [upload_file(data=image_bytes(200, 200))]).status_code == 201
    )  # over a job's limit
    settings.MAX_BATCH_REQUEST_BYTES = 1000
    r = post_batch(alice_api, [upload_file(data=image_bytes(200, 200))])
    assert r.status_code == 413 and r.json()["code"] == "too_large"


@override_settings(UPLOADS_PER_MINUTE=2)
def test_each_file_counts_against_the_rate_limit(alice_api):
    r = post_batch(alice_api, [upload_file(f"{i}.png") for i in range(3)])
    assert (
        r.status_code == 201
        and len(r.json()["jobs"]) == 2
        and r.json()["refused"][0]["code"] == "rate_limited"
    )


def test_the_zip_holds_the_results_byte_for_byte_under_safe_unique_names(alice, alice_api):
    names = ["photo.png", "photo.png", "PHOTO.png", "../../.bashrc.png", "a\\b\x07c.png", "...png", "ok.png"]
    jobs = [make_job(alice, "done", original_name=n) for n in names]
    make_job(alice, "queued", original_name="waiting.png")
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(*jobs, Job.objects.get(original_name="waiting.png"))
    r = alice_api.get(f"/api/v1/batches/{batch.id}/download")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    entries = unzip(r)
    assert list(entries) == [
        "photo-x2.png",
        "photo-x2 (2).png",
        "PHOTO-x2 (3).png",
        "_.._.bashrc-x2.png",
        "a_bc-x2.png",
        "-x2.png",
        "ok-x2.png",
    ]
    for job, data in zip(jobs, entries.values()):
        assert data == job.result_file.open("rb").read()


def test_entry_names_have_no_separators_control_characters_or_leading_dots():
    assert zips.unique_names(["/etc/passwd", "..\\..\\x", "\x00\x1f.hidden", "", "a.b", "A.b"]) == [
        "_etc_passwd",
        "_.._x",
        "hidden",
        "image",
        "a.b",
        "A (2).b",
    ]


def test_long_entry_names_keep_their_extension():
    long = "a" * 300 + "-x2.webp"
    first, second = zips.unique_names([long, long])
    assert first == "a" * 195 + ".webp" and second == "a" * 191 + " (2).webp"
    assert zips.unique_names(["b" * 300])[0] == "b" * 200


def test_a_stranger_gets_404_for_a_batch_and_its_zip(alice, bob_api, alice_api):
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(make_job(alice, "done"))
    assert alice_api.get(f"/api/v1/batches/{batch.id}/download").status_code == 200
    for path in (
        f"/api/v1/batches/{batch.id}",
        f"/api/v1/batches/{batch.id}/download",
        "/api/v1/batches/nope",
    ):
        r = bob_api.get(path)
        assert r.status_code == 404 and r.json()["code"] == "not_found", path


def test_the_history_downloads_the_selection_as_one_zip(alice, bob, alice_web):
    mine = [make_job(alice, "done", original_name=n) for n in ("a.png", "b.png")]
    theirs = make_job(bob, "done", original_name="secret.png")
    r = alice_web.post("/jobs/download", {"job": [str(j.id) for j in mine] + [str(theirs.id)]})
    assert r.status_code == 200 and sorted(unzip(r)) == ["a-x2.png", "b-x2.png"]
    assert alice_web.get(f"/jobs/download?job={mine[0].id}").status_code == 200  # the upload page's link
    assert alice_web.post("/jobs/download", {"job": [str(theirs.id)]}).status_code == 302
    assert "Download all" in alice_web.get("/jobs/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_to_the_end_and_its_zip_holds_every_result(alice_api, worker):
    r = post_batch(alice_api, [upload_file("one.png", width=20, height=16), upload_file("two.png", width=12)])
    batch = r.json()
    for job in batch["jobs"]:
        assert wait_for(job["id"]).status == "done"
    got = alice_api.get(f"/api/v1/batches/{batch['id']}").json()
    assert got["counts"]["done"] == 2 and got["progress"] == 100
    entries = unzip(alice_api.get(f"/api/v1/batches/{batch['id']}/download"))
    assert sorted(entries) == ["one-x2.png", "two-x2.png"]
    for job in Job.objects.all():
        assert entries[job.result_name] == job.result_file.open("rb").read()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("RUN_ZIP64"), reason="streams 4.3 GB: RUN_ZIP64=1 runs it (not in CI)")
def test_a_zip_over_4_gb_is_zip64_and_streamed_in_constant_memory(alice, alice_api):
    import resource

    from django.core.files.storage import default_storage

    big = 2**32 + 2**28  # 4.25 GiB of zeros, a sparse file: no disk used
    job = make_job(alice, "done", original_name="huge.png")
    with open(default_storage.path(job.result_file.name), "r+b") as f:
        f.truncate(big)
    job.output_bytes = big
    job.save()
    batch = Batch.objects.create(owner=alice)
    batch.jobs.add(job)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = alice_api.get(f"/api/v1/batches/{batch.id}/download")
    total, tail = 0, b""
    for chunk in r.streaming_content:
        total += len(chunk)
        tail = (tail + chunk)[-4096:]
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert total == int(r["Content-Length"]) > big
    assert b"PK\x06\x06" in tail and b"PK\x06\x07" in tail  # the ZIP64 end records
    assert grown_mib < 64, f"the stream grew the process by {grown_mib:.0f} MiB"
