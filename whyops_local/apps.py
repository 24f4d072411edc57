from django.apps import AppConfig


class WhyopsLocalConfig(AppConfig):
    name = "whyops_local"
    verbose_name = "whyops-local"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from .storage.search import on_connection

        connection_created.connect(on_connection)
