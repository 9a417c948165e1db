from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from upscale_worker.engine import header
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.target import UNITS, from_length
from upscale_worker.engine.vocabulary import SCALES
from webapp.jobs import waiting
from webapp.jobs.models import FORMATS, Job, Network, Source, Status


class JobSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField()
    eta_seconds = serializers.SerializerMethodField()
    result_url = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    filename = serializers.CharField(source="original_name")
    run_seconds = serializers.FloatField(read_only=True, allow_null=True)
    expired = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "status",
            "progress",
            "eta_seconds",
            "scale",
            "target_side",
            "target_pixels",
            "target_dpi",
            "size_summary",
            "input_width",
            "input_height",
            "output_width",
            "output_height",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "result_url",
            "filename",
            "format",
            "quality",
            "keep_metadata",
            "source",
            "network",
            "model",
            "variant",
            "model_choice",
            "attempts",
            "run_seconds",
            "expired",
            "url",
            "queue_position",
            "expires_at",
        ]
        extra_kwargs = {
            "source": {
                "help_text": "What was asked: auto (from the file's compression), clean or compressed."
            },
            "network": {"help_text": "The network asked for: edsr or rlfn (fast and sharp)."},
            "model": {"help_text": "The model that ran; empty until a worker ran the job."},
            "variant": {"help_text": "The variant that ran: clean or jpeg (JPEG-aware); empty until then."},
            "model_choice": {"help_text": "Why that variant ran."},
            "scale": {
                "help_text": "The scale the network ran at: the one asked, or the smallest reaching the target."
            },
            "target_side": {
                "help_text": "width, height or long_side when a target size was asked; empty otherwise."
            },
            "target_pixels": {
                "help_text": "The target in pixels on target_side (a print size converted); null: none."
            },
            "target_dpi": {
                "help_text": "The density written into the result (a print target's DPI); null: the input's."
            },
        }

    size_summary = serializers.CharField(
        read_only=True, help_text='What the job makes: "x2", or "x2 then resized to 3840x2160".'
    )

    def get_error(self, job) -> str | None:
        return job.error or None

    def get_eta_seconds(self, job) -> float | None:
        """Running: the worker's estimate. Queued: the wait and the run, from the measured throughput."""
        if job.status == Status.QUEUED:
            return waiting.wait_eta_seconds(job, self.get_queue_position(job))
        return job.eta_seconds

    def get_queue_position(self, job) -> int | None:
        if not hasattr(job, "_queue_position"):
            job._queue_position = waiting.queue_position(job)
        return job._queue_position

    @extend_schema_field(serializers.DateTimeField())
    def get_expires_at(self, job):
        return serializers.DateTimeField().to_representation(
            waiting.expires_at(job)
        )  # a string, as JSON needs

    def get_expired(self, job) -> bool:
        return job.expired_at is not None

    def _absolute(self, path):
        request = self.context.get("request")
        if request:
            return request.build_absolute_uri(path)
        return self.context.get("site_url", "") + path  # a webhook's body is built outside any request

    def get_result_url(self, job) -> str | None:
        if job.status != Status.DONE or not job.result_file:
            return None
        return self._absolute(reverse("api-job-result", args=[job.id]))

    def get_url(self, job) -> str:
        return self._absolute(job.get_absolute_url())


INPUT_HELP = (
    f"{header.names()}, a single picture (animations are refused), found from its bytes, not its name"
)


SOURCE_HELP = (
    "auto: the JPEG-aware model for a compressed JPEG or WebP below the quality threshold, else the clean "
    "one; clean or compressed: force either"
)
NETWORK_HELP = (
    "edsr (the product's model) or rlfn (fast and sharp); a scale the network lacks where this server "
    "installed it (UPSCALE_MODELS, the manifest) is refused with code unsupported_network, never switched; "
    "default: the server's (UPSCALE_DEFAULT_NETWORK, else edsr)"
)


TARGET_FIELDS = {"target_width": "width", "target_height": "height", "target_long_side": "long_side"}


class TargetFields(serializers.Serializer):
    """A scale, or a size to reach instead (upscale_worker.engine.target): one of target_width, target_height,
    target_long_side, in target_unit (pixels by default; a print length in cm, mm or in needs target_dpi).
    ``validate`` leaves ``target`` (a Target or None) and ``scale`` (None with a target) in the data."""

    scale = serializers.ChoiceField(
        choices=list(SCALES),
        required=False,
        help_text="x2, x3 or x4; leave out when asking for a target size.",
    )
    target_width = serializers.FloatField(
        required=False,
        help_text="Instead of a scale: the result's exact width (in target_unit); the height keeps the aspect.",
    )
    target_height = serializers.FloatField(
        required=False, help_text="Instead of a scale: the result's exact height; the width keeps the aspect."
    )
    target_long_side = serializers.FloatField(
        required=False,
        help_text="Instead of a scale: the result's longer side (e.g. 3840 for a 4K wallpaper).",
    )
    target_unit = serializers.ChoiceField(
        choices=list(UNITS),
        default="px",
        help_text="px, or a print length in cm, mm or in (converted at target_dpi, rounded half up).",
    )
    target_dpi = serializers.FloatField(
        required=False,
        help_text="The print's density, written into the result (PNG pHYs, JPEG JFIF); needed with cm, mm, in.",
    )

    def validate(self, data):
        given = [name for name in TARGET_FIELDS if data.get(name) is not None]
        if len(given) > 1:
            raise serializers.ValidationError(f"Give one target size, not {' and '.join(given)}.")
        if given and data.get("scale") is not None:
            raise serializers.ValidationError(
                "Give a scale or a target size, not both: the target chooses the scale."
            )
        if not given and data.get("scale") is None:
            raise serializers.ValidationError({"scale": ["Give a scale (2, 3, 4) or a target size."]})
        if not given and data.get("target_dpi") is not None:
            raise serializers.ValidationError({"target_dpi": ["A DPI goes with a target size."]})
        data["target"] = None
        if given:
            try:
                data["target"] = from_length(
                    TARGET_FIELDS[given[0]], data[given[0]], data["target_unit"], data.get("target_dpi")
                )
            except EngineError as e:
                raise serializers.ValidationError({given[0]: [str(e)]}) from None
        return data


class JobCreateSerializer(TargetFields):
    image = serializers.FileField(help_text=INPUT_HELP)
    format = serializers.ChoiceField(choices=FORMATS, default="png")
    quality = serializers.IntegerField(min_value=1, max_value=100, default=95)
    keep_metadata = serializers.BooleanField(default=False)
    source = serializers.ChoiceField(choices=Source.choices, default=Source.AUTO, help_text=SOURCE_HELP)
    network = serializers.ChoiceField(choices=Network.choices, required=False, help_text=NETWORK_HELP)


class EstimateQuerySerializer(TargetFields):
    width = serializers.IntegerField(min_value=1, max_value=1_000_000, help_text="The input's width, pixels.")
    height = serializers.IntegerField(
        min_value=1, max_value=1_000_000, help_text="The input's height, pixels."
    )
    output_format = serializers.ChoiceField(
        choices=FORMATS, default="png", help_text="The result's format (its side limit); ?format= is DRF's."
    )
    network = serializers.ChoiceField(
        choices=Network.choices,
        required=False,
        help_text="The network the job would run on (its speed is measured apart); default: the server's "
        "(UPSCALE_DEFAULT_NETWORK, else edsr). One that lacks the scale answers 400, code unsupported_network.",
    )


class EstimateSerializer(serializers.Serializer):
    network = serializers.ChoiceField(choices=Network.choices, help_text="The network the estimate is for.")
    scale = serializers.IntegerField(help_text="The scale that would run: the one asked, or the target's.")
    output_width = serializers.IntegerField(help_text="The network's output, before any resize to a target.")
    output_height = serializers.IntegerField()
    output_megapixels = serializers.FloatField(help_text="Of the network's output: what the run costs.")
    result_width = serializers.IntegerField(
        help_text="The result's width: the target's size when one is asked."
    )
    result_height = serializers.IntegerField()
    megapixels_per_second = serializers.FloatField(
        allow_null=True,
        help_text="Output megapixels a second, measured on recent jobs at this scale on this network.",
    )
    measured_jobs = serializers.IntegerField(help_text="How many recent jobs the speed was measured on.")
    queued_jobs = serializers.IntegerField(help_text="Jobs queued or running now, ahead of a new one.")
    run_seconds = serializers.FloatField(
        allow_null=True, help_text="The job's own run; null before any job ran."
    )
    wait_seconds = serializers.FloatField(allow_null=True, help_text="The wait for the work ahead of it.")
    total_seconds = serializers.FloatField(allow_null=True)
    too_large = serializers.CharField(
        allow_null=True,
        help_text="Why the upload would be refused (and the largest scale that fits), or null.",
    )


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
