"""Web pages: upload, job page (with its tiny status JSON), files, history."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from upscale_worker.engine import header, limits
from upscale_worker.engine.errors import EngineError
from upscale_worker.engine.models import available_scales as network_scales
from upscale_worker.engine.models import default_network, enabled_networks
from upscale_worker.engine.target import SIDES, UNITS, from_length
from webapp.jobs import tiles
from webapp.jobs.models import FORMATS, Job, Network, Source, Status
from webapp.jobs.serializers import JobSerializer
from webapp.jobs.services import web
from webapp.jobs.validation import available_scales


def site_context(request):
    # Not "site_name": Django's auth views put the request's host there, over a context processor's value.
    return {"site_title": settings.SITE_NAME, "signup_open": settings.SIGNUP_OPEN}


def owned_job(request, job_id):
    """The caller's job, or 404 for anyone else's (never 403)."""
    return get_object_or_404(Job, pk=job_id, owner=request.user)


def file_response(field, content_type, filename=None, attachment=False, max_age=3600):
    """A user's stored file: ``field`` a FieldFile or a storage name."""
    try:
        f = default_storage.open(field, "rb") if isinstance(field, str) else field.open("rb")
    except OSError:
        raise Http404("The file is gone.") from None
    response = FileResponse(f, content_type=content_type, as_attachment=attachment, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def home(request):
    if not request.user.is_authenticated:
        return render(request, "home.html")
    recent = Job.objects.filter(owner=request.user)[:5]
    ctx = {
        "scales": available_scales(),
        "formats": FORMATS,
        "sources": Source.choices,
        "networks": [(v, label) for v, label in Network.choices if v in enabled_networks()],
        "target_sides": [
            (side, side.replace("_", " ").replace("long side", "longest side")) for side in SIDES
        ],
        "target_units": list(UNITS),
        "default_network": default_network(),
        "recent": recent,
        "max_mb": settings.MAX_UPLOAD_MB,
        "input_formats": header.names(),
        "accept": ",".join(header.MEDIA_TYPES.values()),
        "max_in_mp": settings.MAX_INPUT_MEGAPIXELS,
        "max_out_mp": settings.MAX_OUTPUT_MEGAPIXELS,
        "limits": {
            "inputMegapixels": settings.MAX_INPUT_MEGAPIXELS,
            "outputMegapixels": settings.MAX_OUTPUT_MEGAPIXELS,
            "maxSide": limits.MAX_SIDE,
            "formatMegapixels": limits.FORMAT_MEGAPIXELS,
            "networkScales": {
                n: network_scales(settings.MODEL_MANIFEST.parent, n) for n in enabled_networks()
            },
            "maxBytes": settings.MAX_UPLOAD_MB * 2**20,
            "networkRefusals": network_refusals(available_scales()),
        },
    }
    return render(request, "jobs/upload.html", ctx)


def network_refusals(scales):
    """{network: {scale: the refusal's sentence}} for each offered network and each of ``scales`` it lacks
    (RLFN x3), in the words the server refuses such an upload with, so the page says it before uploading."""
    refusals = {}
    for network in enabled_networks():
        for scale in scales:
            try:
                web.choose_network(network, scale)
            except web.Refused as e:
                refusals.setdefault(network, {})[scale] = str(e)
    return refusals


def _int(value, default, low, high):
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return default


def posted_target(post):
    """The page form's size to reach (scale "target": target_side, target_length in target_unit, target_dpi),
    or None when it asks for a scale. Raises EngineError with a sentence."""
    if post.get("scale") != "target":
        return None
    dpi = post.get("target_dpi", "").strip()
    try:
        dpi_value = float(dpi) if dpi else None
    except ValueError:
        raise EngineError(f"{dpi!r} is not a DPI.") from None
    return from_length(
        post.get("target_side", "long_side"),
        post.get("target_length", "").strip() or "0",
        post.get("target_unit", "px"),
        dpi_value,
    )


@login_required
@require_POST
def upload(request):
    """One or several files; JSON for the page's script, a redirect for a plain form."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        target = posted_target(request.POST)
    except EngineError as e:
        if wants_json:
            return JsonResponse({"detail": str(e), "code": e.code}, status=400)
        messages.error(request, str(e))
        return redirect("home")
    scale = None if target else _int(request.POST.get("scale"), 2, 0, 99)
    fmt = request.POST.get("format", "png") if request.POST.get("format") in FORMATS else "png"
    quality = _int(request.POST.get("quality"), 95, 1, 100)
    keep = request.POST.get("keep_metadata") in ("on", "true", "1")
    source = request.POST.get("source") or Source.AUTO  # a bad value is refused by submit, with a message
    network = request.POST.get("network") or None
    files = request.FILES.getlist("image")
    if not files:
        if wants_json:
            return JsonResponse({"detail": "Choose an image."}, status=400)
        messages.error(request, "Choose an image.")
        return redirect("home")
    created, errors = [], []
    for f in files:
        try:
            created.append(web.submit(request.user, f, scale, fmt, quality, keep, source, network, target))
        except web.Refused as e:
            errors.append((f.name, e))
    if wants_json:
        if errors:
            name, e = errors[0]
            return JsonResponse(
                {"detail": str(e), "filename": name, **e.body()}, status=e.status, headers=e.headers()
            )
        return JsonResponse(JobSerializer(created[0], context={"request": request}).data, status=201)
    for name, e in errors:
        messages.error(request, f"{name}: {e}")
    if len(created) == 1 and not errors:
        return redirect(created[0])
    return redirect("history")


@login_required
def job_page(request, job_id):
    job = owned_job(request, job_id)
    context = {"job": job, "Status": Status, "zoom": zoom_sources(job), "partial_url": partial_url(job)}
    return render(request, "jobs/job.html", context)


def zoom_sources(job):
    """What the page's zoomable comparison (OpenSeadragon) opens: the two deep-zoom pyramids the worker
    made, or, for a job made before them, the two previews; with the result's size for the 1:1 view."""
    if job.status != Status.DONE or not job.result_preview:
        return None
    if not job.tiles:
        sources = {
            kind: {"type": "image", "url": reverse("job-file", args=[job.id, f"{kind}-preview"])}
            for kind in ("input", "result")
        }
        return {
            "before": sources["input"],
            "after": sources["result"],
            "width": job.output_width,
            "height": job.output_height,
            "full": False,
        }
    dzi = {
        layer: {
            "Image": {
                "xmlns": "http://schemas.microsoft.com/deepzoom/2008",
                "Url": f"{job.get_absolute_url()}/tiles/{layer}/",
                "Format": info["ext"],
                "Overlap": str(tiles.OVERLAP),
                "TileSize": str(tiles.TILE_SIZE),
                "Size": {"Width": str(info["width"]), "Height": str(info["height"])},
            }
        }
        for layer, info in job.tiles_info.items()
    }
    return {**dzi, "width": job.output_width, "height": job.output_height, "full": True}


def status_data(request, job):
    """The job's API representation plus, while it runs, ``partial_url``: its partial preview (the windows
    computed so far), a new URL each time the worker stores a new one, so the page knows when to swap."""
    data = JobSerializer(job, context={"request": request}).data
    data["partial_url"] = partial_url(job)
    return data


def partial_url(job):
    if job.status != Status.RUNNING or not job.partial_preview:
        return None
    version = job.partial_preview.name.rpartition("/")[2].partition(".")[0][:12]
    return reverse("job-file", args=[job.id, "partial-preview"]) + "?v=" + version


@login_required
def job_status(request, job_id):
    job = owned_job(request, job_id)
    return JsonResponse(status_data(request, job))


@login_required
def jobs_status(request):
    """The status JSON of several of the caller's jobs (``job=<id>`` repeated, at most 100), for the upload
    page's one poll for all its cards: {"jobs": [...]}; others' and unknown ids are left out."""
    ids = [i for i in request.GET.getlist("job")[:100] if _is_uuid(i)]
    jobs = Job.objects.filter(owner=request.user, pk__in=ids)
    return JsonResponse({"jobs": [status_data(request, job) for job in jobs]})


FILES = {
    "input": "input_file",
    "result": "result_file",
    "input-preview": "input_preview",
    "result-preview": "result_preview",
    "thumbnail": "thumbnail",
    "partial-preview": "partial_preview",
}
PREVIEW_TYPES = {"jpg": "image/jpeg", "webp": "image/webp"}


@login_required
def job_file(request, job_id, kind):
    job = owned_job(request, job_id)
    if kind not in FILES:
        raise Http404()
    field = getattr(job, FILES[kind])
    if not field or (kind == "result" and job.status != Status.DONE):
        raise Http404("The file is not available.")
    if kind == "partial-preview":  # only while the job runs; each version has its own URL (?v=)
        if job.status != Status.RUNNING:
            raise Http404("The job is not running.")
        return file_response(field, "image/jpeg", max_age=60)
    if kind == "input":
        return file_response(field, f"image/{job.input_format}", job.original_name, attachment=True)
    if kind == "result":
        return file_response(field, job.content_type, job.result_name, attachment=True)
    return file_response(field, PREVIEW_TYPES.get(field.name.rpartition(".")[2], "application/octet-stream"))


@login_required
def job_tile(request, job_id, path):
    """One zoom tile ("after/12/3_4.jpg"), as stored by the worker: the web never decodes an image."""
    job = owned_job(request, job_id)
    name = tiles.stored_name(job.tiles, path) if job.tiles and job.status == Status.DONE else None
    if name is None:
        raise Http404("No such tile.")
    # A job's tiles never change (new ones get a new folder), so the browser keeps them for a day.
    return file_response(name, PREVIEW_TYPES[name.rpartition(".")[2]], max_age=86400)


@login_required
@require_POST
def job_cancel(request, job_id):
    job = owned_job(request, job_id)
    if not web.cancel(job):
        messages.error(request, f"The job is already {job.status}.")
    return redirect(job)


@login_required
@require_POST
def job_retry(request, job_id):
    job = owned_job(request, job_id)
    if not web.retry(job):
        messages.error(request, "Only failed or cancelled jobs whose input is kept can be retried.")
    return redirect(job)


@login_required
@require_POST
def job_delete(request, job_id):
    web.delete(owned_job(request, job_id))
    messages.success(request, "The job was deleted.")
    return redirect("history")


@login_required
def history(request):
    jobs = Job.objects.filter(owner=request.user)
    wanted = request.GET.get("status", "")
    if wanted in Status.values:
        jobs = jobs.filter(status=wanted)
    page = Paginator(jobs, 20).get_page(request.GET.get("page"))
    return render(request, "jobs/history.html", {"page": page, "status": wanted, "statuses": Status.values})


@login_required
@require_POST
def bulk_delete(request):
    ids = request.POST.getlist("job")
    jobs = Job.objects.filter(owner=request.user, pk__in=[i for i in ids if _is_uuid(i)])
    count = 0
    for job in jobs:
        web.delete(job)
        count += 1
    messages.success(request, f"Deleted {count} job{'s' if count != 1 else ''}.")
    return redirect("history")


def _is_uuid(value):
    import uuid

    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False
