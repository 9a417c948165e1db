from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from upscale_worker.engine.vocabulary import OUTPUT_FORMATS
from webapp.integrations.models import EVENTS, Batch, Delivery, WebhookEndpoint
from webapp.jobs.models import Network, Source
from webapp.jobs.serializers import INPUT_HELP, NETWORK_HELP, SOURCE_HELP, JobSerializer, TargetFields


class WebhookCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENTS),
        required=False,
        allow_empty=False,
        help_text="Default: every event.",
    )


class WebhookSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(
        help_text="whsec_ + base64: shown only in this answer; verify signatures with it"
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="event_id")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "job_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
        ]


class RefusedFileSerializer(serializers.Serializer):
    filename = serializers.CharField()
    detail = serializers.CharField()
    code = serializers.CharField()


class BatchCreateSerializer(TargetFields):
    image = serializers.ListField(
        child=serializers.FileField(), allow_empty=False, help_text=f"One or more images. {INPUT_HELP}"
    )
    format = serializers.ChoiceField(choices=list(OUTPUT_FORMATS), default="png")
    quality = serializers.IntegerField(min_value=1, max_value=100, default=95)
    keep_metadata = serializers.BooleanField(default=False)
    source = serializers.ChoiceField(choices=Source.choices, default=Source.AUTO, help_text=SOURCE_HELP)
    network = serializers.ChoiceField(
        choices=Network.choices, required=False, help_text=f"Every file's network: {NETWORK_HELP}"
    )


class BatchSerializer(serializers.ModelSerializer):
    jobs = serializers.SerializerMethodField()
    refused = RefusedFileSerializer(many=True)
    counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = ["id", "created_at", "counts", "progress", "jobs", "refused", "download_url"]

    def _jobs(self, batch):
        return sorted(batch.jobs.all(), key=lambda j: j.created_at)  # the upload's order

    @extend_schema_field(JobSerializer(many=True))
    def get_jobs(self, batch):
        return JobSerializer(self._jobs(batch), many=True, context=self.context).data

    def get_counts(self, batch) -> dict[str, int]:
        counts = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
        for job in self._jobs(batch):
            counts[job.status] += 1
        return counts

    def get_progress(self, batch) -> float:
        """Mean progress of the jobs, 0-100 (a finished job counts 100)."""
        jobs = self._jobs(batch)
        return round(
            sum(100 if j.status in ("done", "failed", "cancelled") else j.progress for j in jobs)
            / max(1, len(jobs)),
            1,
        )

    def get_download_url(self, batch) -> str:
        from django.urls import reverse

        path = reverse("api-batch-download", args=[batch.id])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path
