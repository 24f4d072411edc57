from django.apps import AppConfig


class WhyopsLocalConfig(AppConfig):
    name = "whyops_local"
    verbose_name = "whyops-local"
