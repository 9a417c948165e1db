from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    """Webhooks, batches and idempotent retries: what integrators build on top of jobs."""

    name = "webapp.integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from webapp.integrations import webhooks
        from webapp.jobs.services import job_finished

        job_finished.connect(webhooks.on_job_finished, dispatch_uid="integrations.webhooks")
