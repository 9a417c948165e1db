"""REST API under /api/v1: the same rules and errors as the web pages."""

from django.contrib.auth import authenticate, get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.decorators import action, api_view, authentication_classes, permission_classes
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from webapp import ratelimit
from webapp.jobs.models import Job, Status
from webapp.jobs.services import web
from webapp.jobs.serializers import CredentialsSerializer, JobCreateSerializer, JobSerializer, TokenSerializer
from webapp.jobs.views import file_response


def refused(e):
    return Response({"detail": str(e), **e.body()}, status=e.status, headers=e.headers())


@extend_schema(request=CredentialsSerializer, responses={201: TokenSerializer})
@api_view(["POST"])
@authentication_classes([])
@permission_classes([])
def register(request):
    if not settings.SIGNUP_OPEN:
        return Response({"detail": "Sign-up is closed on this server."}, status=403)
    wait = ratelimit.hit(f"signup:{ratelimit.client_ip(request)}", settings.LOGINS_PER_MINUTE)
    if wait:
        raise Throttled(wait)
    data = CredentialsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    User = get_user_model()
    username, password = data.validated_data["username"], data.validated_data["password"]
    if User.objects.filter(username__iexact=username).exists():
        return Response({"username": ["This username is taken."]}, status=400)
    user = User(username=username)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as e:
        return Response({"password": list(e.messages)}, status=400)
    user.set_password(password)
    user.save()
    return Response({"token": Token.objects.create(user=user).key}, status=201)


@extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer})
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
    if user is None:
        ratelimit.login_failed(client, username)
        return Response({"detail": "Wrong username or password."}, status=400)
    return Response({"token": Token.objects.get_or_create(user=user)[0].key})


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
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
            raise NotFound()

    @extend_schema(request={"multipart/form-data": JobCreateSerializer}, responses={201: JobSerializer})
    def create(self, request):
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = web.submit(request.user, data.validated_data.pop("image"), **{
                "scale": int(data.validated_data["scale"]), "fmt": data.validated_data["format"],
                "quality": data.validated_data["quality"], "keep_metadata": data.validated_data["keep_metadata"],
                "source": data.validated_data["source"]})
        except web.Refused as e:
            return refused(e)
        return Response(self.get_serializer(job).data, status=201)

    def destroy(self, request, pk=None):
        web.delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not web.cancel(job):
            return Response({"detail": f"The job is {job.status}; only queued or running jobs can be cancelled."},
                            status=409)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        if not web.retry(job):
            return Response({"detail": "Only failed or cancelled jobs whose input is kept can be retried."},
                            status=409)
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"], url_name="result")
    def result(self, request, pk=None):
        job = self.get_object()
        if job.status != Status.DONE or not job.result_file:
            raise NotFound("The result is not available.")
        return file_response(job.result_file, job.content_type, job.result_name, attachment=True)
