import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from upscale_worker.engine.target import SIDES, Target
from upscale_worker.engine.vocabulary import CONTENT_TYPES, OUTPUT_FORMATS


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (Status.QUEUED, Status.RUNNING)
FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)


def claimable(now):
    """The rows a worker may take (a Q for Job or Part): QUEUED, or RUNNING with its lease run out."""
    return models.Q(status=Status.QUEUED) | models.Q(status=Status.RUNNING, lease_expires_at__lte=now)


FORMATS = OUTPUT_FORMATS


class Source(models.TextChoices):
    """What the user says about the input (upscale_worker.engine.compression.SOURCES)."""

    AUTO = "auto", "Detect from the file"
    CLEAN = "clean", "Clean (PNG, camera RAW export, high-quality JPEG)"
    COMPRESSED = "compressed", "Compressed (web or messenger JPEG)"


class Network(models.TextChoices):
    """Which network upscales (upscale_worker.engine.models.NETWORKS), in the page's plain words."""

    EDSR = "edsr", "EDSR"
    RLFN = "rlfn", "Fast and sharp (RLFN)"


class Job(models.Model):
    """One upscaling job. Status changes go through webapp.jobs.services only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="jobs")
    original_name = models.CharField(max_length=255)
    input_format = models.CharField(max_length=8)
    input_width = models.PositiveIntegerField()
    input_height = models.PositiveIntegerField()
    input_bytes = models.BigIntegerField(default=0)
    output_width = models.PositiveIntegerField(null=True, blank=True)
    output_height = models.PositiveIntegerField(null=True, blank=True)
    output_bytes = models.BigIntegerField(default=0)
    scale = models.PositiveSmallIntegerField()
    # What was asked (source) and what ran: the worker writes the model's name, its variant (clean, jpeg)
    # and why that variant (e.g. "auto: JPEG of quality 62 (IJG-equivalent), below 90"); empty until then.
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.AUTO)
    network = models.CharField(max_length=8, choices=Network.choices, default=Network.EDSR)
    model = models.CharField(max_length=64, blank=True)
    variant = models.CharField(max_length=8, blank=True)
    model_choice = models.CharField(max_length=255, blank=True)
    # A size asked for instead of a scale (upscale_worker.engine.target): ``scale`` is then the smallest that
    # reaches it, and the network's output is resized to it; target_dpi: the print's density, None to keep
    # the input's. Empty side: no target.
    target_side = models.CharField(max_length=16, blank=True, choices=[(s, s) for s in SIDES])
    target_pixels = models.PositiveIntegerField(null=True, blank=True)
    target_dpi = models.FloatField(null=True, blank=True)
    format = models.CharField(max_length=8, default="png")
    quality = models.PositiveSmallIntegerField(default=95)
    keep_metadata = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0)
    eta_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims: every "is this still my claim" reads it
    # A worker shutting down marks its running jobs; each stops between tiles, goes back to QUEUED and is
    # counted here, not against JOB_MAX_ATTEMPTS (at most JOB_MAX_HANDBACKS times).
    hand_back = models.BooleanField(default=False)
    handbacks = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)

    input_file = models.FileField(max_length=255, blank=True)
    result_file = models.FileField(max_length=255, blank=True)
    input_preview = models.FileField(max_length=255, blank=True)
    result_preview = models.FileField(max_length=255, blank=True)
    thumbnail = models.FileField(max_length=255, blank=True)
    # While the job runs: a small preview of the windows computed so far (services/partial.py), rewritten
    # under a new name every PARTIAL_PREVIEW_INTERVAL seconds; emptied and removed when the attempt ends.
    partial_preview = models.FileField(max_length=255, blank=True)
    # The deep-zoom pyramids of input and result (webapp.jobs.tiles): their storage folder ("tiles/<token>/"),
    # {"before"|"after": {"width", "height", "ext"}} and their bytes, counted in the storage quota.
    tiles = models.CharField(max_length=255, blank=True)
    tiles_info = models.JSONField(default=dict, blank=True)
    tiles_bytes = models.BigIntegerField(default=0)
    # Storage names the running attempt has written, noted before each write: if its worker is killed
    # before the job is DONE, the next claim removes them, so a crash leaves no orphan files.
    attempt_files = models.JSONField(default=list, blank=True)
    # A job shared out in parts (services/fanout.py): ``fanout`` names the current split (a token the parts
    # carry; empty when the job runs whole), ``plan`` is the engine's pinned plan every part runs, and
    # ``helpers`` lists the workers other than ``worker`` that computed parts of the finished run.
    fanout = models.CharField(max_length=32, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    helpers = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self):
        return f"{self.original_name} x{self.scale} ({self.status})"

    def get_absolute_url(self):
        return reverse("job", args=[self.id])

    @property
    def target(self):
        """The size asked for (a Target), or None when the job asked for a scale alone."""
        return Target.of_fields(self.target_side, self.target_pixels, self.target_dpi)

    @property
    def size_summary(self):
        """What the job makes, in words: "x2", or "x2 then resized to 3840x2160" (before it is done: "x2 then
        resized to 3840 pixels wide")."""
        target = self.target
        if target is None:
            return f"x{self.scale}"
        if self.output_width and self.output_height:
            return f"x{self.scale} then resized to {self.output_width}x{self.output_height}"
        return f"x{self.scale} then resized to {target.describe()}"

    @property
    def input_megapixels(self):
        return self.input_width * self.input_height / 1e6

    @property
    def output_megapixels(self):
        """The network's own output (before any resize to a target): what the worker computes."""
        return self.input_megapixels * self.scale * self.scale

    @property
    def is_active(self):
        return self.status in ACTIVE

    @property
    def eta_seconds(self):
        if self.status != Status.RUNNING or self.eta_at is None:
            return None
        return max(
            0.0, round((self.eta_at - timezone.now()).total_seconds(), 1)
        )  # tenths: the page polls at it

    @property
    def queued_seconds(self):
        return (self.started_at - self.created_at).total_seconds() if self.started_at else None

    @property
    def run_seconds(self):
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def content_type(self):
        return CONTENT_TYPES[self.format]

    @property
    def result_name(self):
        stem = self.original_name.rsplit(".", 1)[0] or "image"
        size = f"{self.output_width}x{self.output_height}" if self.target and self.output_width else None
        return f"{stem}-{size or f'x{self.scale}'}.{'jpg' if self.format == 'jpeg' else self.format}"

    def files(self):
        return [
            f
            for f in (
                self.input_file,
                self.result_file,
                self.input_preview,
                self.result_preview,
                self.thumbnail,
                self.partial_preview,
            )
            if f
        ]


class Part(models.Model):
    """One share of a job split among workers: windows ``first``..``stop - 1`` of the engine's grid, claimed
    by one conditional UPDATE (QUEUED, or RUNNING with its lease run out), valid while the job is RUNNING
    with ``fanout == run``. ``output`` is the storage name of a helper's result, noted before it is written."""

    job = models.ForeignKey(Job, models.CASCADE, related_name="parts")
    run = models.CharField(max_length=32)
    index = models.PositiveIntegerField()
    first = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    worker = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # claims, hand-backs included
    handbacks = models.PositiveSmallIntegerField(default=0)
    output = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "run", "index"], name="part_once_per_run")]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self):
        return f"part {self.index} of job {self.job_id}"

    @property
    def windows(self):
        return range(self.first, self.stop)
