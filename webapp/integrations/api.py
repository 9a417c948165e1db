"""REST API of the integrations: /api/v1/webhooks and /api/v1/batches. Everything is the caller's: another
user's endpoint, delivery or batch answers 404."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from webapp import downloads
from webapp.errors import FIELD_ERRORS, error, errors
from webapp.integrations import batches, idempotency, safe_http, webhooks, zips
from webapp.integrations.models import Batch, Delivery, WebhookEndpoint
from webapp.integrations.serializers import (
    BatchCreateSerializer,
    BatchSerializer,
    DeliverySerializer,
    WebhookCreatedSerializer,
    WebhookCreateSerializer,
    WebhookSerializer,
)
from webapp.jobs.services import web


class OwnedViewSet(viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.queryset.none()
        return self.queryset.filter(owner=self.request.user)

    def get_object(self):
        from django.core.exceptions import ValidationError
        from rest_framework.exceptions import NotFound

        try:
            return super().get_object()
        except (ValidationError, ValueError):
            raise NotFound() from None


class WebhookViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, OwnedViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookSerializer
    pagination_class = None
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(responses={200: WebhookSerializer(many=True)})
    def list(self, request):
        return super().list(request)

    @extend_schema(
        request=WebhookCreateSerializer,
        responses={201: WebhookCreatedSerializer, 400: FIELD_ERRORS, **errors(409)},
    )
    def create(self, request):
        data = WebhookCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if self.get_queryset().count() >= settings.MAX_WEBHOOK_ENDPOINTS:
            return error(
                f"You have {settings.MAX_WEBHOOK_ENDPOINTS} endpoints already; delete one first.",
                409,
                "conflict",
            )
        try:
            endpoint = webhooks.create_endpoint(
                request.user, data.validated_data["url"], data.validated_data.get("events")
            )
        except safe_http.Unsafe as e:
            return error(e, 400, "unsafe_url", url=[str(e)])
        return Response(WebhookCreatedSerializer(endpoint).data, status=201)

    @extend_schema(responses={204: None, **errors(404)})
    def destroy(self, request, pk=None):
        return super().destroy(request, pk)

    @extend_schema(responses={200: DeliverySerializer(many=True), **errors(404)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """The endpoint's 50 most recent deliveries, newest first."""
        endpoint = self.get_object()
        return Response(DeliverySerializer(endpoint.deliveries.all()[:50], many=True).data)

    @extend_schema(responses={200: DeliverySerializer, **errors(404)})
    @action(detail=True, methods=["get"], url_path=r"deliveries/(?P<delivery_id>[^/]+)", url_name="delivery")
    def delivery(self, request, pk=None, delivery_id=None):
        endpoint = self.get_object()
        delivery = get_object_or_404(Delivery, endpoint=endpoint, pk=_uuid_or_404(delivery_id))
        return Response(DeliverySerializer(delivery).data)


def _uuid_or_404(value):
    import uuid

    from django.http import Http404

    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404() from None


class BatchViewSet(mixins.RetrieveModelMixin, OwnedViewSet):
    queryset = Batch.objects.prefetch_related("jobs")
    serializer_class = BatchSerializer
    parser_classes = [MultiPartParser]

    @extend_schema(responses={200: BatchSerializer, **errors(404)})
    def retrieve(self, request, pk=None):
        return super().retrieve(request, pk)

    @extend_schema(
        request={"multipart/form-data": BatchCreateSerializer},
        parameters=[idempotency.PARAMETER],
        responses={201: BatchSerializer, 400: FIELD_ERRORS, **errors(409, 422, 429, 507)},
    )
    @idempotency.idempotent
    def create(self, request):
        data = BatchCreateSerializer(data={**request.data.dict(), "image": request.FILES.getlist("image")})
        data.is_valid(raise_exception=True)
        options = data.validated_data
        try:
            batch, refused = batches.create_batch(
                request.user,
                options["image"],
                None if options.get("scale") is None else int(options["scale"]),
                options["format"],
                options["quality"],
                options["keep_metadata"],
                options["source"],
                options.get("network"),
                options["target"],
            )
        except batches.TooMany as e:
            return error(e, 400, "too_many_files")
        except web.Refused as e:
            return error(e, e.status, e.code, network=[str(e)])
        if batch is None:
            first = refused[0]
            return error(
                f"No file was accepted: {first['detail']}",
                first["status"],
                first["code"],
                image=[f"{r['filename']}: {r['detail']}" for r in refused],
            )
        batch = self.get_queryset().get(pk=batch.pk)
        return Response(self.get_serializer(batch).data, status=201)

    @extend_schema(
        responses={**downloads.responses(["application/zip"], "The finished results"), **errors(404)}
    )
    @action(detail=True, methods=["get"], url_name="download", renderer_classes=downloads.RENDERERS)
    def download(self, request, pk=None):
        """A ZIP of the batch's finished results, streamed."""
        batch = self.get_object()
        jobs = batch.jobs.order_by("created_at")
        kind = downloads.content_type(request, zips.ZIP)
        return zips.results_zip(jobs, f"batch-{str(batch.id)[:8]}.zip", kind)
