"""What a server does before serving (``manage.py runserver`` and ``whyops-local`` alike): migrate, then
say where things are."""

import ipaddress
import os
import sys
from urllib.parse import quote


def _address(args: list[str]) -> str:
    positional = [arg for arg in args if not arg.startswith("-")]
    if not positional:
        return "127.0.0.1:8000"
    addrport = positional[0]
    return addrport if ":" in addrport else f"127.0.0.1:{addrport}"


def _host(address: str) -> str:
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    host = host.strip("[]")
    return "0.0.0.0" if host in ("", "0") else host  # runserver's "0:8000"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def refuse_exposure(host: str) -> None:
    """Exit, saying why, before serving on an address other than loopback without WHYOPS_API_KEY (unless
    WHYOPS_ALLOW_REMOTE=1): anyone who can reach it could read every trace and spend the provider keys."""
    from django.conf import settings

    if _is_loopback(host) or settings.WHYOPS_API_KEY or settings.WHYOPS_ALLOW_REMOTE:
        return
    sys.stderr.write(f"whyops-local: refusing to serve on {host} without WHYOPS_API_KEY: every trace and the proxy "
                     f"would be open to anyone who can reach it. Set WHYOPS_API_KEY, serve on 127.0.0.1, or set "
                     f"WHYOPS_ALLOW_REMOTE=1 to serve it open anyway.\n")
    sys.exit(2)


def migrate() -> None:
    """Set Django up and bring the database's tables up to date, quietly; the server's connections
    opened after it (and its writer's) open that database file only while it is there."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from .storage.faults import open_existing_only

    open_existing_only()


def banner(base: str) -> str:
    """Where the data lives and the URLs to give an agent, for a server at ``base`` (``http://host:port``)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    where = database["NAME"] if database["ENGINE"].endswith("sqlite3") else f"{database['ENGINE']} {database['NAME']}"
    return (
        f"whyops-local: data in {where}\n"
        f"  point the WhyOps SDK at  analyse_base_url=\"{base}/api\"  proxy_base_url=\"{base}/proxy\"\n"
        f"  OpenAI clients:    base_url=\"{base}/proxy/v1\"    Anthropic clients: base_url=\"{base}/proxy\"\n"
        + (f"  sign a browser in: {base}/?token={quote(settings.WHYOPS_API_KEY)}\n" if settings.WHYOPS_API_KEY else "")
        + f"  traces:            {base}/\n"
    )


def prepare_for_runserver(args: list[str]) -> None:
    # The autoreloader runs manage.py again in a child with RUN_MAIN set; do this once, in the parent.
    if os.environ.get("RUN_MAIN") == "true":
        return
    refuse_exposure(_host(_address(args)))
    migrate()
    sys.stdout.write(banner(f"http://{_address(args)}"))
    sys.stdout.flush()
