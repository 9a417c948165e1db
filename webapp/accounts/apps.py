from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"

    def ready(self):
        from webapp.accounts import views  # noqa: F401  (connects count_failed_login)
