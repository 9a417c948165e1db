"""The storage sweep: input, result and preview objects no job names, older than the lease, are removed (a cut
worker's late writes, an upload whose row was never made); everything a job names and young objects stay. On
disk and on S3 (moto)."""

import os
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from tests.conftest import image_bytes, media_files
from tests.platform.factories import make_job, stored
from tests.platform.test_s3_storage import bucket, keys, s3_endpoint, s3_site  # noqa: F401 (fixtures)
from webapp.jobs.services import sweeper

pytestmark = pytest.mark.django_db


def orphans():
    """One late result and one late preview, as a cut worker's store would leave them."""
    return [stored("results", image_bytes(16, 16)), stored("previews", image_bytes(8, 8, "WEBP"), "webp")]


def age(names, seconds):
    for name in names:
        path = default_storage.path(name)
        then = time.time() - seconds
        os.utime(path, (then, then))


def test_it_removes_old_objects_no_job_names_and_keeps_the_rest_on_disk(alice, settings):
    settings.JOB_LEASE_SECONDS = 60
    done = make_job(alice, "done")
    attempt = orphans()  # a running attempt's files, named in its row before they were written
    make_job(alice, "running", attempts=1, attempt_files=attempt, lease_expires_at=timezone.now())
    old, young = [*orphans(), stored("inputs", image_bytes(8, 8))], orphans()
    young_input = stored("inputs", image_bytes(8, 8))  # an upload whose row is being made
    named = [done.result_file.name, done.result_preview.name, done.input_file.name, *attempt]
    age(old + named + attempt, 61)

    assert sweeper.sweep_storage() == 3
    left = {p.relative_to(settings.MEDIA_ROOT).as_posix() for p in media_files()}
    assert not left & set(old)
    assert set(named) | set(young) | {young_input} <= left


def test_it_keeps_a_running_jobs_partial_preview_and_removes_a_finished_jobs(alice, settings):
    settings.JOB_LEASE_SECONDS = 60
    live, left_over = (stored("previews", image_bytes(8, 8, "JPEG"), "jpg") for _ in range(2))
    make_job(alice, "running", attempts=1, partial_preview=live, lease_expires_at=timezone.now())
    make_job(alice, "done", partial_preview=left_over)  # its worker was killed before it removed it
    age([live, left_over], 61)

    assert sweeper.sweep_storage() == 1
    assert default_storage.exists(live) and not default_storage.exists(left_over)


def test_it_sweeps_an_empty_or_missing_storage_without_error(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "never-written"
    assert sweeper.sweep_storage() == 0


def test_a_failed_listing_raises_instead_of_passing_for_clean(settings, monkeypatch):
    def broken(name):
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(default_storage, "listdir", broken)
    with pytest.raises(PermissionError):
        sweeper.sweep_storage()


@pytest.mark.django_db(transaction=True)
def test_it_removes_orphans_from_an_s3_bucket(alice, settings, s3_endpoint, bucket):
    # S3 times are whole seconds, so a new object can look up to 1 s older than it is: a young one must be
    # swept less than lease - 1 s after it was written (a 1 s lease failed once on a loaded machine).
    settings.JOB_LEASE_SECONDS = 2
    with s3_site(s3_endpoint, "upscale-test"):
        done = make_job(alice, "done")
        old = orphans()
        time.sleep(3.2)
        young = orphans()
        assert sorted(old + young) == [k for k in keys(bucket) if k in old + young]

        assert sweeper.sweep_storage() == 2
        assert set(keys(bucket)) == {
            done.input_file.name,
            done.result_file.name,
            done.result_preview.name,
            *young,
        }
        assert default_storage.get_modified_time(young[0]) > timezone.now() - timedelta(seconds=30)
        default_storage.save("results/late.png", ContentFile(b"x"))
        default_storage.delete("results/late.png")
        assert sweeper._modified("results/late.png") is None  # gone between the listing and the check
