"""Upload validation from the header only: magic bytes, then Pillow's lazy open (no decoding)."""

import json
from dataclasses import dataclass

from django.conf import settings
from PIL import Image

MAGIC = {"png": [b"\x89PNG\r\n\x1a\n"], "jpeg": [b"\xff\xd8\xff"], "webp": [b"RIFF"]}
PILLOW_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
WEBP_MAX_SIDE = 16383
ALLOWED = "PNG, JPEG or WebP"


class Invalid(Exception):
    """A user-readable reason to refuse an upload, with a machine-readable ``code`` for the API."""

    def __init__(self, message, code="invalid"):
        super().__init__(message)
        self.code = code


@dataclass
class Header:
    format: str
    width: int
    height: int


def sniff(head):
    """The format decided by the magic bytes, or None."""
    for fmt, magics in MAGIC.items():
        if any(head.startswith(m) for m in magics):
            if fmt != "webp" or head[8:12] == b"WEBP":
                return fmt
    return None


def installed_models():
    """{scale: model name} from models/manifest.json (read as data: the web never loads the engine)."""
    try:
        entries = json.loads(settings.MODEL_MANIFEST.read_text())["models"]
        entries.sort(key=lambda e: e.get("weights") != "fp16")  # name the default weights, not int8
        return {int(e["scale"]): e.get("name", f"x{e['scale']}") for e in reversed(entries)
                if int(e["scale"]) in (2, 3, 4)}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def available_scales():
    """Scales with an installed model (all three when the manifest cannot be read: the worker will say)."""
    return sorted(installed_models()) or [2, 3, 4]


def model_name(scale):
    return installed_models().get(scale, f"edsr-x{scale}")


def read_header(f):
    """Format and size of an uploaded file, from its header; raises Invalid."""
    f.seek(0)
    head = f.read(32)
    f.seek(0)
    fmt = sniff(head)
    if fmt is None:
        raise Invalid(f"This is not a {ALLOWED} image.", "unsupported_format")
    try:
        with Image.open(f, formats=[k for k, v in PILLOW_FORMATS.items() if v == fmt]) as im:
            width, height = im.size
            frames = getattr(im, "n_frames", 1)
            if fmt == "png":
                im.verify()  # chunk CRCs up to IEND: catches truncation and flipped bits, decodes nothing
    except Image.DecompressionBombError:
        raise Invalid(f"The image has far more pixels than the limit of {settings.MAX_INPUT_MEGAPIXELS:g} megapixels.",
                      "too_large")
    except Exception:
        raise Invalid(f"The file is damaged or not a valid {fmt.upper()} image.")
    finally:
        f.seek(0)
    if fmt == "webp" and int.from_bytes(head[4:8], "little") + 8 > getattr(f, "size", float("inf")):
        raise Invalid("The file is damaged or not a valid WEBP image.")
    if frames > 1:
        raise Invalid(f"Animated images are not supported (this one has {frames} frames).", "unsupported_format")
    if width < 1 or height < 1:
        raise Invalid("The image is empty.")
    return Header(fmt, width, height)


def fits(width, height, scale, fmt):
    out_mp = width * height * scale * scale / 1e6
    if out_mp > settings.MAX_OUTPUT_MEGAPIXELS:
        return False
    return fmt != "webp" or max(width, height) * scale <= WEBP_MAX_SIDE


def check_limits(header, scale, fmt):
    """Raise Invalid when the input or the output would be too large."""
    w, h = header.width, header.height
    mp = w * h / 1e6
    if mp > settings.MAX_INPUT_MEGAPIXELS:
        raise Invalid(
            f"The image is {w}x{h} ({mp:.1f} megapixels); the limit is {settings.MAX_INPUT_MEGAPIXELS:g} megapixels.",
            "too_large")
    if fits(w, h, scale, fmt):
        return
    smaller = [s for s in available_scales() if s < scale and fits(w, h, s, fmt)]
    hint = f" The largest scale that fits is x{max(smaller)}." if smaller else " No scale fits; use a smaller image."
    if fmt == "webp" and max(w, h) * scale > WEBP_MAX_SIDE:
        raise Invalid(f"WebP output cannot exceed {WEBP_MAX_SIDE} pixels a side ({w}x{h} at x{scale}).{hint}",
                      "too_large")
    raise Invalid(
        f"At x{scale} the result would be {w * scale}x{h * scale} ({mp * scale * scale:.1f} megapixels); "
        f"the limit is {settings.MAX_OUTPUT_MEGAPIXELS:g} megapixels.{hint}", "too_large")


def validate_upload(f, scale, fmt):
    """Check an uploaded file before anything is stored; returns its Header or raises Invalid."""
    if scale not in available_scales():
        offered = ", ".join(f"x{s}" for s in available_scales())
        raise Invalid(f"Scale x{scale} is not available on this server (available: {offered}).")
    if f.size > settings.MAX_UPLOAD_BYTES:
        raise Invalid(f"The file is {f.size / 2**20:.1f} MB; the limit is {settings.MAX_UPLOAD_MB:g} MB.", "too_large")
    header = read_header(f)
    check_limits(header, scale, fmt)
    return header
