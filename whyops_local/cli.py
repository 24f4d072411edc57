"""The ``whyops-local`` command: ``serve`` (the default), ``demo``, and any Django management command
(``whyops-local prune ...`` is ``python manage.py prune ...``).

Nothing of Django is imported before the data folder is chosen: the settings read it when imported."""

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable

PROG = "whyops-local"
OWN_COMMANDS = ("serve", "demo")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve", *argv]
    try:
        if argv[0] in OWN_COMMANDS or argv[0] in ("-h", "--help"):
            args = parser(with_management_commands=argv[0] in ("-h", "--help")).parse_args(argv)
            args.run(args)
        else:
            manage([PROG, *argv])
    except KeyboardInterrupt:  # Ctrl-C before the server took over its signals
        sys.exit(130)


def parser(with_management_commands: bool = False) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG, description="A local trace viewer and debugger for LLM agents.",
        epilog=f"Any other Django management command runs as with manage.py (`{PROG} help` lists them all); "
               "it uses WHYOPS_DATA_DIR.")
    commands = top.add_subparsers(title="commands", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the pages, the API and the proxy (the default command)",
                                description="Migrate the database, print where things are, and serve.")
    _server_options(serve)
    serve.set_defaults(run=lambda args: _serve(args.host, args.port, args.data_dir))
    demo = commands.add_parser(
        "demo", help="serve with a built-in fake provider and scripted agents, to look around",
        description="Serve on a throwaway data folder (unless --data-dir) and record scripted agents that call "
                    "a fake OpenAI / Anthropic provider through the proxy and send events to the ingest API.")
    _server_options(demo)
    demo.set_defaults(run=_demo)
    if with_management_commands:
        for name, summary in _management_commands():
            commands.add_parser(name, help=summary, add_help=False)
    return top


def _server_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    command.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one (default: 8000)")
    command.add_argument("--data-dir", help="folder for the database and secret key (default: WHYOPS_DATA_DIR, "
                                            "else the per-user data folder)")


def _setup_environment(data_dir: str | None) -> None:
    from . import datadir

    if data_dir:
        os.environ["WHYOPS_DATA_DIR"] = os.path.abspath(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
    datadir.prepare(datadir.path())


def _management_commands() -> list[tuple[str, str]]:
    """This project's own management commands, with their one-line help (the data folder is left alone)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whyops_local.settings")
    import django
    from django.core.management import get_commands, load_command_class

    django.setup()
    ours = sorted(name for name, app in get_commands().items() if app == "whyops_local")
    return [(name, next(iter(load_command_class("whyops_local", name).help.strip().splitlines()), "")) for name in ours]


def manage(argv: list[str]) -> None:
    """Run a management command, ``argv`` as ``sys.argv`` would be for manage.py (what manage.py runs too)."""
    _setup_environment(None)
    if argv[1:2] == ["runserver"]:
        # daphne owns the runserver command (it must, to serve ASGI), so the
        # "just works" start-up (migrate, say where data lives) hooks in here.
        from .startup import prepare_for_runserver

        prepare_for_runserver(argv[2:])
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


def _serve(host: str, port: int, data_dir: str | None, on_ready: Callable[[str], None] | None = None) -> None:
    """Migrate, then serve the app with daphne until Ctrl-C or SIGTERM; ``on_ready`` gets the base URL."""
    _setup_environment(data_dir)
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server  # before anything imports Twisted's reactor: it installs the asyncio one
    from twisted.internet import reactor

    from . import startup

    startup.refuse_exposure(host)
    startup.migrate()
    from .asgi import application  # starts the writer process

    def announce() -> None:
        bound_host, bound_port = server.listening_addresses[0]
        base = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"
        sys.stdout.write(startup.banner(base))
        sys.stdout.flush()
        if on_ready:
            on_ready(base)

    # Announced once the reactor runs, with its Ctrl-C and SIGTERM handlers in place.
    server = Server(application, endpoints=build_endpoint_description_strings(host=host, port=port),
                    ready_callable=lambda: reactor.callWhenRunning(announce))
    server.run()
    if server.abort_start:  # daphne has logged why (say, the port is taken)
        sys.exit(1)


def _demo(args: argparse.Namespace) -> None:
    from .demo import scenarios
    from .demo.fake_provider import FakeUpstream

    data_dir = args.data_dir
    if data_dir is None:
        data_dir = tempfile.mkdtemp(prefix="whyops-demo-")
        # Registered before the writer's own exit handler, so it runs after the writer has let go of the file.
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    fake = FakeUpstream(agentic=True).__enter__()
    os.environ.update(WHYOPS_OPENAI_BASE_URL=f"{fake.url}/v1", WHYOPS_ANTHROPIC_BASE_URL=fake.url)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):  # nothing of the demo reaches a real provider
        os.environ.pop(name, None)

    def drive(base: str) -> None:
        from django.conf import settings

        sys.stdout.write(f"whyops-local demo: fake provider at {fake.url}; recording scripted agents "
                         f"({'kept in ' + data_dir if args.data_dir else 'thrown away at exit'})\n")
        sys.stdout.flush()

        def run() -> None:
            traces = scenarios.run(base, api_key=settings.WHYOPS_API_KEY)
            sys.stdout.write(f"whyops-local demo: recorded {len(traces)} runs; look at {base}/ (Ctrl-C to stop)\n")
            sys.stdout.flush()

        threading.Thread(target=run, name="whyops-demo", daemon=True).start()

    try:
        _serve(args.host, args.port, data_dir, on_ready=drive)
    finally:
        fake.__exit__(None, None, None)


if __name__ == "__main__":
    main()
