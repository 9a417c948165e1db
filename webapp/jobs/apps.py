from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "webapp.jobs"
    label = "jobs"

    def ready(self):
        # The web process validates requests with the engine's vocabulary (which networks and scales are
        # offered): it gets the same configuration the workers build before each job.
        from upscale_worker.engine.config import configure
        from webapp.jobs.services.host import engine_config

        configure(engine_config())
