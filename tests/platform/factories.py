"""Jobs made directly in the database, with real files in storage, for tests that need no worker."""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from tests.conftest import image_bytes
from webapp.jobs.models import Job


def stored(kind, data, ext="png"):
    from webapp.jobs.services import storage_name

    return default_storage.save(storage_name(kind, ext), ContentFile(data))


def make_job(owner, status="queued", size=16, **fields):
    data = image_bytes(size, size)
    fields = {
        "original_name": "cat.png",
        "input_format": "png",
        "input_width": size,
        "input_height": size,
        "input_bytes": len(data),
        "scale": 2,
        "model": "edsr-x2",
        **fields,
    }
    job = Job.objects.create(owner=owner, status=status, input_file=stored("inputs", data), **fields)
    if status == "done":
        result = image_bytes(32, 32)
        job.result_file = stored("results", result)
        job.result_preview = job.input_preview = job.thumbnail = stored(
            "previews", image_bytes(8, 8, "WEBP"), "webp"
        )
        job.output_width = job.output_height = 32
        job.output_bytes = len(result)
        job.progress = 100
        job.started_at = job.finished_at = timezone.now()
        job.save()
    return job
