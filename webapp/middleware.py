from django.conf import settings
from django.core.signals import request_finished, request_started
from django.http import HttpResponse, JsonResponse

from webapp import logs, proxy


def too_large(request, message, status=413, code="too_large"):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": code}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class BodySizeLimitMiddleware:
    """Answer 413 from the Content-Length header, before any of the body is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        batch = request.path.rstrip("/") == "/api/v1/batches"
        limit = settings.MAX_BATCH_REQUEST_BYTES if batch else settings.MAX_REQUEST_BYTES
        length = request.META.get("CONTENT_LENGTH") or "0"
        if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            return too_large(
                request, "Send a Content-Length; chunked uploads are not accepted.", 411, "length_required"
            )
        if not length.isdigit():
            return too_large(request, "Bad Content-Length.", 400, "invalid")
        if int(length) > limit:
            mb = settings.MAX_BATCH_MB if batch else settings.MAX_UPLOAD_MB
            return too_large(request, f"The request is larger than the limit of {mb:g} MB.")
        return self.get_response(request)


class PermissionsPolicyMiddleware:
    """Permissions-Policy (Django has no setting for it): the site uses no camera, microphone or location."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class ProxyHeadersMiddleware:
    """Forwarding headers count only from a trusted proxy (TRUSTED_PROXIES): from anyone else X-Forwarded-Proto
    is dropped before SecurityMiddleware reads it, so a client cannot claim HTTPS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not proxy.from_trusted_proxy(request):
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        request.request_id = logs.request_id.get() or start_request(environ=request.META)
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


def start_request(environ, **kwargs):
    """On request_started (before any middleware, so every line of the request has it): the request id, from a
    trusted proxy's X-Request-ID when it is well-formed, else new."""
    trusted = proxy.is_trusted(environ.get("REMOTE_ADDR", ""))
    rid = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID"), trusted)
    logs.request_id.set(rid)
    return rid


def end_request(**kwargs):
    logs.request_id.set(None)


request_started.connect(start_request, dispatch_uid="webapp.request_id")
request_finished.connect(end_request, dispatch_uid="webapp.request_id")
