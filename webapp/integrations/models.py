import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.jobs.models import Job

EVENTS = ("job.succeeded", "job.failed", "job.cancelled")


class IdempotencyKey(models.Model):
    """One ``Idempotency-Key`` of one user: inserted before anything is stored, then holds the first answer."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 hex of the request's fields and files
    status_code = models.PositiveSmallIntegerField(null=True)  # None while the first request is in flight
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_key_per_user")]


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100)  # whsec_ + base64; shown once, kept to sign
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]


class Delivery(models.Model):
    """One event for one endpoint. The row is the truth: the sender sends what is due and records each try."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64)  # the webhook-id header: the same on every retry
    event_type = models.CharField(max_length=32)
    job_id = models.UUIDField(null=True)
    body = models.TextField()  # the signed JSON, fixed when the event happened
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="batches")
    jobs = models.ManyToManyField(Job, related_name="batches")
    refused = models.JSONField(default=list)  # [{"filename", "detail", "code"}]
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
