from csp.decorators import csp_replace
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from webapp import health, metrics
from webapp.accounts import views as accounts
from webapp.errors import SchemaView
from webapp.integrations import api as integrations_api
from webapp.integrations import views as integrations
from webapp.jobs import api
from webapp.jobs import views as jobs

router = SimpleRouter()
router.trailing_slash = "/?"  # both /jobs and /jobs/
router.register("jobs", api.JobViewSet, basename="api-job")
router.register("webhooks", integrations_api.WebhookViewSet, basename="api-webhook")
router.register("batches", integrations_api.BatchViewSet, basename="api-batch")

api_urls = [
    re_path(r"^auth/register/?$", api.register, name="api-register"),
    re_path(r"^auth/token/?$", api.token, name="api-token-auth"),
    re_path(r"^estimate/?$", api.estimate, name="api-estimate"),
    re_path(r"^schema/?$", SchemaView.as_view(), name="api-schema"),
    # Swagger UI's script is a file (the split view), but it adds <style> elements as it draws: inline styles are
    # allowed on this one page, which shows no user content; scripts stay 'self' only. Replaced, not added to:
    # 'unsafe-inline' is ignored beside the site-wide policy's hash.
    re_path(
        r"^docs/?$",
        csp_replace({"style-src": ["'self'", "'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    *router.urls,
]

handler400 = "webapp.errors.bad_request"
handler403 = "webapp.errors.permission_denied"
handler404 = "webapp.errors.not_found"
handler500 = "webapp.errors.server_error"

urlpatterns = [
    path("", jobs.home, name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),  # browsers ask
    path("upload", jobs.upload, name="upload"),
    path("jobs/", jobs.history, name="history"),
    path("jobs/delete", jobs.bulk_delete, name="bulk-delete"),
    path("jobs/download", integrations.download_selected, name="download-selected"),
    path("jobs/status", jobs.jobs_status, name="jobs-status"),
    path("webhooks/", integrations.webhooks_page, name="webhooks"),
    path("webhooks/<uuid:endpoint_id>/delete", integrations.webhook_delete, name="webhook-delete"),
    path("jobs/<uuid:job_id>", jobs.job_page, name="job"),
    path("jobs/<uuid:job_id>/status", jobs.job_status, name="job-status"),
    path("jobs/<uuid:job_id>/cancel", jobs.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry", jobs.job_retry, name="job-retry"),
    path("jobs/<uuid:job_id>/delete", jobs.job_delete, name="job-delete"),
    path("jobs/<uuid:job_id>/tiles/<path:path>", jobs.job_tile, name="job-tile"),
    path("jobs/<uuid:job_id>/<slug:kind>", jobs.job_file, name="job-file"),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.login_view, name="login"),
    path("accounts/token/", accounts.api_token, name="api-token"),
    path("accounts/token/reset", accounts.api_token_reset, name="api-token-reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/login/", accounts.admin_login),  # before the admin's own, which has no limit
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/", include(api_urls)),
]
