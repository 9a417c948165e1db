from datetime import timedelta

from django.contrib import admin
from django.utils import timezone

from webapp.jobs.models import Job, Status


def queue_length():
    """Messages waiting in Redis on the ``upscale`` queue, or None when the broker is down."""
    from webapp import redis_clients

    try:
        return redis_clients.broker(connect_timeout=0.5).llen("upscale")
    except Exception:
        return None


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = (
        "original_name",
        "owner",
        "status",
        "progress",
        "scale",
        "source",
        "network",
        "variant",
        "input_width",
        "input_height",
        "attempts",
        "worker",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "scale", "network", "format", "source", "variant", "created_at")
    search_fields = ("id", "original_name", "owner__username", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
    date_hierarchy = "created_at"
    list_select_related = ("owner",)

    def has_add_permission(self, request):
        return False

    def changelist_view(self, request, extra_context=None):
        day_ago = timezone.now() - timedelta(days=1)
        extra_context = {
            **(extra_context or {}),
            "queued": Job.objects.filter(status=Status.QUEUED).count(),
            "running": Job.objects.filter(status=Status.RUNNING).count(),
            "broker_queue": queue_length(),
            "recent_failures": Job.objects.filter(
                status=Status.FAILED, finished_at__gte=day_ago
            ).select_related("owner")[:10],
        }
        return super().changelist_view(request, extra_context)
