"""Starting the real server (``manage.py runserver``, daphne) in a subprocess, as a user would."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {Path(process.stdout.name).read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not answer within {timeout}s")


class RunningServer:
    def __init__(self, process: subprocess.Popen, port: int, data_dir: Path):
        self.process, self.port, self.data_dir = process, port, data_dir
        self.url = f"http://127.0.0.1:{port}"
        self.api = f"{self.url}/api"
        self.proxy = f"{self.url}/proxy"
        self.sqlite_path = data_dir / "whyops.sqlite3"


@contextmanager
def run_server(data_dir: Path, env: dict[str, str] | None = None, port: int | None = None, root: Path = ROOT):
    """``root``: the checkout to run (a benchmark may compare another one)."""
    port = port or free_port()
    log = (data_dir / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=root,
        # The app's own settings: pytest-django exports tests.settings, which would pick another data dir.
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(data_dir),
             "PYTHONUNBUFFERED": "1", **(env or {})},
        # A file, not a pipe nobody reads: a full pipe would block the server on its next log line.
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/health", process)
        yield RunningServer(process, port, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
