"""The words the engine, the site, the API and the CLI share: one home for each, cheap to import (no numpy,
no OpenVINO), so the web process and the serializers read them without loading the engine."""

SCALES = (2, 3, 4)  # the upscaling factors offered, one EDSR model each
OUTPUT_FORMATS = ("png", "jpeg", "webp", "avif", "tiff")  # what a result may be written as
UPLOAD_FORMATS = ("png", "jpeg", "webp", "heic", "avif", "tiff", "bmp", "gif")  # what the site and CLI read
CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "avif": "image/avif",
    "tiff": "image/tiff",
}
