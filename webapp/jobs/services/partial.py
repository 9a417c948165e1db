"""The result while it is made: the worker of a running job keeps a small preview of the windows computed so
far (the engine's PartialPreview: finished windows from the result, the rest from the input enlarged and
dimmed) and stores it every PARTIAL_PREVIEW_INTERVAL seconds, so the job page shows the picture filling in.

Each write is a new unguessable name, put in ``Job.partial_preview`` before the file is written (a page
never reads a half-written file; a name without a file is a 404 the page ignores), then the previous file is
removed. The file goes when the attempt ends (any outcome), at the next claim, on cancel and on delete;
the storage sweep removes what a killed worker left (only running jobs name a partial preview).
For a job in parts the coordinator writes it: it sees its own windows as it computes them and reads each
helper part once from storage when that part is done (fanout.helper_windows)."""

import logging
import time

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from webapp.jobs.models import Job, Status
from webapp.jobs.services.files import remove, storage_name

log = logging.getLogger(__name__)


class Partial:
    """One attempt's partial preview: ``begin(prepared)`` once the picture is decoded, ``add()`` each finished
    window, ``tick()`` often (it writes only when due), ``discard()`` when the attempt ends."""

    def __init__(self, job):
        self.job = job
        self.canvas = None
        self.name = ""
        self.fetch = lambda: ()  # more finished windows, e.g. the helpers' of a job in parts
        self.written_at = self.written_count = 0

    def begin(self, prepared):
        """Start from an engine Prepared: the picture enlarged and dimmed, no window yet."""
        from upscale_worker.engine.previews import PartialPreview

        self.canvas = PartialPreview(prepared.picture.rgb, prepared.cut, settings.PREVIEW_SIZE)
        self.written_at = time.monotonic()  # the first write after one interval: a short job needs none

    def add(self, index, interior):
        self.canvas.add(index, interior)
        self.tick()

    def watch(self, pairs):
        """Pass (index, interior) pairs through (engine run_windows -> assemble), adding each."""
        for index, interior in pairs:
            self.add(index, interior)
            yield index, interior

    def tick(self):
        """Store the preview when PARTIAL_PREVIEW_INTERVAL has passed and windows were added since."""
        interval = settings.PARTIAL_PREVIEW_INTERVAL
        if self.canvas is None or interval <= 0 or time.monotonic() - self.written_at < interval:
            return
        self.written_at = time.monotonic()
        for index, interior in self.fetch():
            self.canvas.add(index, interior)
        if len(self.canvas.done) > self.written_count:
            self.write()

    def write(self):
        """Name a new file in the row (while this attempt holds the job), write it, remove the previous one.
        A storage failure is logged and skipped: the preview is a courtesy, the result is what counts."""
        name = storage_name("previews", "jpg")
        mine = Job.objects.filter(pk=self.job.pk, status=Status.RUNNING, attempts=self.job.attempts)
        if not mine.update(partial_preview=name):
            return  # no longer ours: the engine stops at its next window
        old, self.name, self.written_count = self.name, name, len(self.canvas.done)
        try:
            if default_storage.save(name, ContentFile(self.canvas.encode())) != name:
                raise OSError(f"storage renamed {name}")
        except OSError:
            log.warning("job %s: could not store its partial preview", self.job.pk, exc_info=True)
        remove([old] if old else [])

    def discard(self):
        """Remove this attempt's file and empty the row's name if it is still this one."""
        if self.name:
            Job.objects.filter(pk=self.job.pk, partial_preview=self.name).update(partial_preview="")
            remove([self.name])
            self.name = ""


def drop(job_id):
    """Empty and remove the job's partial preview, whichever attempt wrote it (claim, cancel, give up)."""
    name = Job.objects.filter(pk=job_id).values_list("partial_preview", flat=True).first()
    if name and Job.objects.filter(pk=job_id, partial_preview=name).update(partial_preview=""):
        remove([name])
