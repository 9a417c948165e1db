"""Web pages: upload, job page (with its tiny status JSON), files, history."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from upscale_worker.engine.models import default_network, enabled_networks
from webapp.jobs.models import FORMATS, Job, Network, Source, Status
from webapp.jobs.serializers import JobSerializer
from webapp.jobs.services import web
from webapp.jobs.validation import available_scales


def site_context(request):
    return {"site_name": settings.SITE_NAME, "signup_open": settings.SIGNUP_OPEN}


def owned_job(request, job_id):
    """The caller's job, or 404 for anyone else's (never 403)."""
    return get_object_or_404(Job, pk=job_id, owner=request.user)


def file_response(field, content_type, filename=None, attachment=False):
    try:
        f = field.open("rb")
    except OSError:
        raise Http404("The file is gone.")
    response = FileResponse(f, content_type=content_type, as_attachment=attachment, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
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
        "default_network": default_network(),
        "recent": recent,
        "max_mb": settings.MAX_UPLOAD_MB,
        "max_in_mp": settings.MAX_INPUT_MEGAPIXELS,
        "max_out_mp": settings.MAX_OUTPUT_MEGAPIXELS,
    }
    return render(request, "jobs/upload.html", ctx)


def _int(value, default, low, high):
    try:
        return min(high, max(low, int(value)))
    except (TypeError, ValueError):
        return default


@login_required
@require_POST
def upload(request):
    """One or several files; JSON for the page's script, a redirect for a plain form."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    scale = _int(request.POST.get("scale"), 2, 0, 99)
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
            created.append(web.submit(request.user, f, scale, fmt, quality, keep, source, network))
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
    return render(request, "jobs/job.html", {"job": job, "Status": Status})


@login_required
def job_status(request, job_id):
    job = owned_job(request, job_id)
    return JsonResponse(JobSerializer(job, context={"request": request}).data)


FILES = {
    "input": "input_file",
    "result": "result_file",
    "input-preview": "input_preview",
    "result-preview": "result_preview",
    "thumbnail": "thumbnail",
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
    if kind == "input":
        return file_response(field, f"image/{job.input_format}", job.original_name, attachment=True)
    if kind == "result":
        return file_response(field, job.content_type, job.result_name, attachment=True)
    return file_response(field, PREVIEW_TYPES.get(field.name.rpartition(".")[2], "application/octet-stream"))


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
