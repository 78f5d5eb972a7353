from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from jobs import signals  # noqa: F401  (connects the worker's sweeper)
        from jobs.audit import on_login_failed

        user_login_failed.connect(on_login_failed, dispatch_uid="collect-audit-login-failed")
