"""REST API under /api/v1: the same rules and errors as the web pages."""

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from upscale_worker.engine import limits
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.target import smallest_scale
from webapp import downloads, ratelimit
from webapp.errors import FIELD_ERRORS, error, errors
from webapp.integrations import idempotency, links, prefer_wait
from webapp.jobs import waiting
from webapp.jobs.models import CONTENT_TYPES, Job, Status
from webapp.jobs.serializers import (
    CredentialsSerializer,
    EstimateQuerySerializer,
    EstimateSerializer,
    JobCreateSerializer,
    JobSerializer,
    TokenSerializer,
)
from webapp.jobs.services import web
from webapp.jobs.validation import available_scales, site_limits
from webapp.jobs.views import file_response


def refused(e):
    response = error(e, e.status, e.code, **e.body())
    for name, value in e.headers().items():
        response[name] = value
    return response


RESULT_TYPES = tuple(CONTENT_TYPES.values())


def _scale(options):
    """The scale asked for, or None when a target size chooses it (serializers.TargetFields)."""
    return None if options.get("scale") is None else int(options["scale"])


@extend_schema(
    parameters=[EstimateQuerySerializer],
    responses={200: EstimateSerializer, 400: FIELD_ERRORS},
    description="How big the result of an image of this size would be and roughly how long it would take "
    "on the chosen network (its run at the speed measured on recent jobs of that scale and network, plus the "
    "work already queued), before uploading it. With a target size instead of a scale: the scale that would "
    "run, and the run priced on the network's own output.",
)
@api_view(["GET"])
def estimate(request):
    query = EstimateQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    q = query.validated_data
    width, height, target = q["width"], q["height"], q["target"]
    scale, result, too_large = _scale(q), None, None
    try:
        network = web.choose_network(q.get("network"), scale)  # scale None (a target): the network alone
    except web.Refused as e:
        return error(e, e.status, e.code, network=[str(e)])
    try:
        if target is None:
            limits.check(width, height, scale, q["output_format"], site_limits(), available_scales())
        else:
            result = target.size(width, height)
            scales = web.target_scales(network)
            scale = smallest_scale(target, width, height, scales) or max(scales)  # what the refusal is about
            scale = limits.check_target(width, height, target, q["output_format"], site_limits(), scales)
    except EngineError as e:  # TooLarge, TargetTooSmall: said, with the numbers of the scale that would run
        too_large = str(e)
    if scale is None:  # the target is not larger than the picture: nothing would run
        scale = min(available_scales())
    result_width, result_height = result or (width * scale, height * scale)
    return Response(
        {
            **waiting.estimate(width, height, scale, network),
            "scale": scale,
            "result_width": result_width,
            "result_height": result_height,
            "too_large": too_large,
        }
    )


@extend_schema(
    request=CredentialsSerializer, responses={201: TokenSerializer, 400: FIELD_ERRORS, **errors(403, 429)}
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def register(request):
    if not settings.SIGNUP_OPEN:
        return error("Sign-up is closed on this server.", 403, "signup_closed")
    wait = ratelimit.hit(f"signup:{ratelimit.client_ip(request)}", settings.LOGINS_PER_MINUTE)
    if wait:
        raise Throttled(wait)
    data = CredentialsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    password = data.validated_data["password"]
    # The site's sign-up form decides: the same username characters, case-blind uniqueness and password rules.
    form = UserCreationForm(
        {"username": data.validated_data["username"], "password1": password, "password2": password}
    )
    if not form.is_valid():
        fields = {
            "password" if name.startswith("password") else name: list(msgs)
            for name, msgs in form.errors.items()
        }
        name, messages = next(iter(fields.items()))
        return error(f"{name}: {messages[0]}", 400, **fields)
    return Response({"token": Token.objects.create(user=form.save()).key}, status=201)


@extend_schema(
    request=CredentialsSerializer, responses={200: TokenSerializer, 400: FIELD_ERRORS, **errors(429)}
)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def token(request):
    data = CredentialsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    username = data.validated_data["username"]
    client = ratelimit.client_ip(request)
    wait = ratelimit.login_blocked(client, username)
    if wait:
        raise Throttled(wait)
    user = authenticate(request, username=username, password=data.validated_data["password"])
    if user is None:  # counted by accounts.views.count_failed_login, like every failed authenticate()
        return error("Wrong username or password.", 400, "wrong_credentials")
    return Response({"token": Token.objects.get_or_create(user=user)[0].key})


@extend_schema_view(
    list=extend_schema(responses={200: JobSerializer(many=True), **errors(404)}),
    retrieve=extend_schema(parameters=[prefer_wait.PARAMETER], responses={200: JobSerializer, **errors(404)}),
    destroy=extend_schema(responses={204: None, **errors(404)}),
)
class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = JobSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Job.objects.none()
        jobs = Job.objects.filter(owner=self.request.user)
        wanted = self.request.query_params.get("status")
        if wanted:
            jobs = jobs.filter(status=wanted)
        return jobs

    def get_object(self):
        try:
            return super().get_object()
        except (ValidationError, ValueError):
            raise NotFound() from None

    @extend_schema(
        request={"multipart/form-data": JobCreateSerializer},
        parameters=[idempotency.PARAMETER, prefer_wait.PARAMETER],
        responses={201: JobSerializer, 400: FIELD_ERRORS, **errors(409, 422, 429, 507)},
    )
    @idempotency.idempotent
    def create(self, request):
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = web.submit(
                request.user,
                data.validated_data.pop("image"),
                scale=_scale(data.validated_data),
                fmt=data.validated_data["format"],
                quality=data.validated_data["quality"],
                keep_metadata=data.validated_data["keep_metadata"],
                source=data.validated_data["source"],
                network=data.validated_data.get("network"),
                target=data.validated_data["target"],
            )
        except web.Refused as e:
            return refused(e)
        job, applied = prefer_wait.wait_for(request, job)
        return prefer_wait.respond(Response(self.get_serializer(job).data, status=201), applied)

    def retrieve(self, request, pk=None):
        job, applied = prefer_wait.wait_for(request, self.get_object())
        return prefer_wait.respond(Response(self.get_serializer(job).data), applied)

    def destroy(self, request, pk=None):
        web.delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: JobSerializer, **errors(404, 409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not web.cancel(job):
            return error(
                f"The job is {job.status}; only queued or running jobs can be cancelled.", 409, "conflict"
            )
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None, responses={200: JobSerializer, **errors(404, 409)})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        if not web.retry(job):
            return error("Only failed or cancelled jobs whose input is kept can be retried.", 409, "conflict")
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "redirect",
                OpenApiTypes.BOOL,
                description="With S3 storage and S3_PUBLIC_ENDPOINT_URL: 302 to a URL presigned for 300 s",
            )
        ],
        responses={
            **downloads.responses(RESULT_TYPES, "The result image"),
            302: OpenApiResponse(description="The result at a presigned URL (Location)"),
            **errors(404),
        },
    )
    @action(detail=True, methods=["get"], url_name="result", renderer_classes=downloads.RENDERERS)
    def result(self, request, pk=None):
        job = self.get_object()
        if job.status != Status.DONE or not job.result_file:
            raise NotFound("The result is not available.")
        if request.query_params.get("redirect") in ("1", "true"):
            url = links.presigned_result_url(job.result_file, job.content_type, job.result_name)
            if url:
                return HttpResponseRedirect(url)
        kind = downloads.content_type(request, job.content_type)
        return file_response(job.result_file, kind, job.result_name, attachment=True)
