"""What a server does before serving (``manage.py runserver`` and ``whyops-local`` alike): migrate, then
say where things are."""

import os
import sys


def _address(args: list[str]) -> str:
    positional = [arg for arg in args if not arg.startswith("-")]
    if not positional:
        return "127.0.0.1:8000"
    addrport = positional[0]
    return addrport if ":" in addrport else f"127.0.0.1:{addrport}"


def migrate() -> None:
    """Set Django up and bring the database's tables up to date, quietly."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def banner(base: str) -> str:
    """Where the data lives and the URLs to give an agent, for a server at ``base`` (``http://host:port``)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = database["NAME"] if database["ENGINE"].endswith("sqlite3") else f"{database['ENGINE']} {database['NAME']}"
    return (
        f"whyops-local: data in {where}\n"
        f"  point the WhyOps SDK at  analyse_base_url=\"{base}/api\"  proxy_base_url=\"{base}/proxy\"\n"
        f"  OpenAI clients:    base_url=\"{base}/proxy/v1\"    Anthropic clients: base_url=\"{base}/proxy\"\n"
        f"  traces:            {base}/\n"
    )


def prepare_for_runserver(args: list[str]) -> None:
    # The autoreloader runs manage.py again in a child with RUN_MAIN set; do this once, in the parent.
    if os.environ.get("RUN_MAIN") == "true":
        return
    migrate()
    sys.stdout.write(banner(f"http://{_address(args)}"))
    sys.stdout.flush()
