"""Set-up of the process that writes proxied calls; imports nothing of the app (Django is not set up yet)."""

from typing import Any


def setup(databases: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    # The server's databases, not whatever the settings module would work out afresh in this process.
    settings.DATABASES = databases
    django.setup()
