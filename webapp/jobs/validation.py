"""Upload validation: the engine's header check (magic bytes, header, PNG chunk CRCs, a JPEG's 1/8-scale draft
decode) and its size arithmetic, with the site's settings; see upscale_worker/engine/header.py and limits.py."""

import json

from django.conf import settings

from upscale_worker.engine import header, limits
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.vocabulary import SCALES


class Invalid(Exception):
    """A user-readable reason to refuse an upload, with a machine-readable ``code`` for the API."""

    def __init__(self, message, code="invalid"):
        super().__init__(message)
        self.code = code


def installed_models():
    """{scale: model name} from models/manifest.json (read as data: the web never loads the engine)."""
    try:
        entries = json.loads(settings.MODEL_MANIFEST.read_text())["models"]
        entries.sort(key=lambda e: e.get("weights") != "fp16")  # name the default weights, not int8
        return {
            int(e["scale"]): e.get("name", f"x{e['scale']}")
            for e in reversed(entries)
            if int(e["scale"]) in SCALES and e.get("network", "edsr") == "edsr"  # the default network's
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def available_scales():
    """Scales with an installed model (all three when the manifest cannot be read: the worker will say)."""
    return sorted(installed_models()) or list(SCALES)


def site_limits():
    """The engine's limits with the site's settings (read from the same environment variables)."""
    return limits.Limits(settings.MAX_INPUT_MEGAPIXELS, settings.MAX_OUTPUT_MEGAPIXELS)


def read_header(f):
    """Format and displayed size of an uploaded file, from its header; raises Invalid."""
    try:
        return header.read_header(f, site_limits())
    except EngineError as e:
        raise Invalid(str(e), e.code) from None


def check_limits(found, scale, fmt):
    """Raise Invalid when the input or the output would be too large (the largest scale that fits named)."""
    try:
        limits.check(found.width, found.height, scale, fmt, site_limits(), available_scales())
    except EngineError as e:
        raise Invalid(str(e), e.code) from None


def scale_for_target(found, target, fmt, scales):
    """The smallest of ``scales`` (the network's, on this server) whose output reaches ``target`` within the
    limits, or Invalid (target_too_small, or too_large naming the largest target that fits)."""
    try:
        return limits.check_target(found.width, found.height, target, fmt, site_limits(), scales)
    except EngineError as e:
        raise Invalid(str(e), e.code) from None


def validate_upload(f, scale, fmt):
    """Check an uploaded file before anything is stored; returns its Header or raises Invalid."""
    if scale not in available_scales():
        offered = ", ".join(f"x{s}" for s in available_scales())
        raise Invalid(f"Scale x{scale} is not available on this server (available: {offered}).")
    return _validated(f, lambda found: check_limits(found, scale, fmt))[0]


def validate_target_upload(f, target, fmt, scales):
    """validate_upload for a size asked for (upscale_worker.engine.target.Target): returns (its Header, the
    smallest of ``scales``, the network's, that reaches ``target`` within the limits) or raises Invalid."""
    offered = [s for s in scales if s in available_scales()]
    return _validated(f, lambda found: scale_for_target(found, target, fmt, offered))


def _validated(f, check_size):
    """The checks every upload meets, ``check_size(header)`` (raising Invalid) before the data is decoded;
    returns (the Header, what ``check_size`` returned)."""
    if f.size > settings.MAX_UPLOAD_BYTES:
        raise Invalid(
            f"The file is {f.size / 2**20:.1f} MB; the limit is {settings.MAX_UPLOAD_MB:g} MB.", "too_large"
        )
    found = read_header(f)
    checked = check_size(found)
    try:
        header.check_data(f, found)  # JPEG: a 1/8-scale draft decode, only once the size is known to be fine
    except EngineError as e:
        raise Invalid(str(e), e.code) from None
    return found, checked
