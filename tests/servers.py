"""Starting the real server (``manage.py runserver``, daphne) in a subprocess, as a user would."""

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {Path(process.stdout.name).read_text()}")
        try:
            if httpx.get(url, timeout=1, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


_databases = itertools.count()
ON_POSTGRES = bool(os.environ.get("DATABASE_URL"))
_shared_by_data_dir: dict[Path, dict[str, str]] = {}


def shared_services_env(data_dir: Path) -> dict[str, str]:
    """With ``DATABASE_URL`` / ``REDIS_URL`` set (the PostgreSQL lane, .ci/postgres-lane), a server's own
    database and Redis database, one per data dir: a server on a fresh data dir starts as empty as a
    fresh SQLite file would, and one restarted on the same data dir (or a second server on it) meets
    the same data. Nothing without them."""
    if data_dir in _shared_by_data_dir:
        return _shared_by_data_dir[data_dir]
    env = {}
    if database_url := os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = fresh_database(database_url)
    if redis_url := os.environ.get("REDIS_URL"):
        # Redis has 16 numbered databases: servers started one after the other rarely share one.
        env["REDIS_URL"] = urlsplit(redis_url)._replace(path=f"/{len(_shared_by_data_dir) % 16}").geturl()
    _shared_by_data_dir[data_dir] = env
    return env


def fresh_database(database_url: str) -> str:
    """The URL of a new, empty database on the PostgreSQL server of ``database_url``."""
    import psycopg

    name = f"whyops_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlsplit(database_url)._replace(path="/" + name).geturl()


class RunningServer:
    def __init__(self, process: subprocess.Popen, port: int, data_dir: Path):
        self.process, self.port, self.data_dir = process, port, data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.api = f"{self.url}/api"
        self.proxy = f"{self.url}/proxy"
        self.sqlite_path = data_dir / "whyops.sqlite3"


def writer_pids(server: RunningServer) -> list[int]:
    """The server's writer process (storage/writer.py), or none while it is being replaced."""
    pids = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return [int(pid) for pid in pids
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]


@contextmanager
def run_server(data_dir: Path, env: dict[str, str] | None = None, port: int | None = None, root: Path = ROOT,
               wrapper: tuple[str, ...] = ()):
    """``root``: the checkout to run (a benchmark may compare another one); ``wrapper``: a command the
    server is run under (``setpriv ... --``)."""
    port = port or free_port()
    log = (data_dir / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [*wrapper, sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=root,
        # The app's own settings: pytest-django exports tests.settings, which would pick another data dir.
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(data_dir),
             "PYTHONUNBUFFERED": "1", **shared_services_env(data_dir), **(env or {})},
        # A file, not a pipe nobody reads: a full pipe would block the server on its next log line.
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        key = (env or {}).get("WHYOPS_API_KEY")
        wait_until_up(f"http://127.0.0.1:{port}/api/health", process, headers={"X-API-Key": key} if key else None)
        yield RunningServer(process, port, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class CliServer:
    """A ``whyops-local`` command's process, its base URL (read from its banner) and its output so far."""

    def __init__(self, process: subprocess.Popen, lines: list[str], base_url: str):
        self.process, self.lines, self.url = process, lines, base_url
        self.api = f"{base_url}/api"

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        """Send ``sig`` to the command's session (what Ctrl-C in a terminal does) and wait for it to exit."""
        os.killpg(self.process.pid, sig)
        return self.process.wait(timeout)


@contextmanager
def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    """``whyops-local ARGS`` (as ``python -m whyops_local.cli``, so the checkout's code), once its banner names its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "whyops_local.cli", *args], cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    banner = threading.Event()

    def read() -> None:  # all along: a full pipe would block the server
        for line in process.stdout:
            lines.append(line)
            if line.lstrip().startswith("traces:"):
                banner.set()
        banner.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        banner.wait(timeout)
        found = re.search(r"traces:\s+(http://\S+?)/?$", "".join(lines), re.MULTILINE)
        if not found:
            raise RuntimeError(f"no banner within {timeout}s: {''.join(lines)}")
        yield CliServer(process, lines, found.group(1))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
