"""File downloads under the API: the file's own type (image/png, application/zip...), or
``application/octet-stream`` when the Accept header prefers it. Generated clients that know only that binary
type (openapi-python-client with its defaults) find it in the schema, ask for it, and read the body as bytes."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework.renderers import BaseRenderer, JSONRenderer

OCTET_STREAM = "application/octet-stream"


class FileRenderer(BaseRenderer):
    """Lets content negotiation accept any type for a download view (which answers with a file response, never
    rendered); the view's errors are rendered as JSON by webapp.errors.exception_handler."""

    media_type = "*/*"
    format = "file"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)  # not reached for a file; JSON if ever a body comes here


RENDERERS = [JSONRenderer, FileRenderer]  # a download action's renderer_classes


def content_type(request, native):
    """``native``, or application/octet-stream when Accept ranks it higher (*/* and no Accept: ``native``)."""
    return request.get_preferred_type([native, OCTET_STREAM]) or native


def responses(native_types, description):
    """The schema's 200 responses of a download: each native type and application/octet-stream."""
    return {
        (200, t): OpenApiResponse(OpenApiTypes.BINARY, description=description)
        for t in (*native_types, OCTET_STREAM)
    }
