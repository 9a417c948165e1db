"""Site pages of the integrations: manage webhook endpoints and see their deliveries; download a selection."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.integrations import safe_http, webhooks, zips
from webapp.integrations.models import EVENTS, WebhookEndpoint
from webapp.jobs.models import Job


@login_required
def webhooks_page(request):
    """GET: the caller's endpoints with their ten latest deliveries; POST: add one (its secret shown once)."""
    endpoints = WebhookEndpoint.objects.filter(owner=request.user)
    secret = typed = None
    if request.method == "POST":
        url = request.POST.get("url", "").strip()
        events = [e for e in request.POST.getlist("events") if e in EVENTS] or list(EVENTS)
        try:
            if endpoints.count() >= settings.MAX_WEBHOOK_ENDPOINTS:
                raise safe_http.Unsafe(f"You have {settings.MAX_WEBHOOK_ENDPOINTS} endpoints already.")
            if len(url) > 2000:
                raise safe_http.Unsafe("The URL is too long.")
            endpoint = webhooks.create_endpoint(request.user, url, events)
            secret = endpoint.secret
            messages.success(request, f"Added {endpoint.url}. Copy its secret now: it is not shown again.")
        except safe_http.Unsafe as e:
            typed = url  # kept in the field, to correct rather than retype
            messages.error(request, f"{e}{PRIVATE_HINT if 'not a public address' in str(e) else ''}")
    rows = [(e, e.deliveries.all()[:10]) for e in endpoints]
    return render(
        request,
        "integrations/webhooks.html",
        {"rows": rows, "secret": secret, "events": EVENTS, "typed": typed},
    )


PRIVATE_HINT = (
    " Webhooks go only to public addresses, so that this server cannot be made to call into its own network;"
    " an operator can allow private ranges with WEBHOOKS_ALLOWED_CIDRS."
)


@login_required
@require_POST
def webhook_delete(request, endpoint_id):
    get_object_or_404(WebhookEndpoint, pk=endpoint_id, owner=request.user).delete()
    messages.success(request, "The endpoint was deleted.")
    return redirect("webhooks")


@login_required
def download_selected(request):
    """A ZIP of the selected jobs' results (``job=<id>`` repeated: the history's form posts them, the upload
    page links them); others' ids are ignored."""
    from webapp.jobs.views import _is_uuid

    ids = [i for i in (request.POST.getlist("job") or request.GET.getlist("job")) if _is_uuid(i)]
    jobs = Job.objects.filter(owner=request.user, pk__in=ids, status="done").exclude(result_file="")
    if not jobs:
        messages.error(request, "None of the selected jobs has a result to download.")
        return redirect("history")
    return zips.results_zip(jobs.order_by("created_at"), "upscaled.zip")
