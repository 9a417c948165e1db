from django.conf import settings
from django.http import HttpResponse, JsonResponse


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
            return too_large(request, "Send a Content-Length; chunked uploads are not accepted.", 411,
                             "length_required")
        if not length.isdigit():
            return too_large(request, "Bad Content-Length.", 400, "invalid")
        if int(length) > limit:
            mb = settings.MAX_BATCH_MB if batch else settings.MAX_UPLOAD_MB
            return too_large(request, f"The request is larger than the limit of {mb:g} MB.")
        return self.get_response(request)
