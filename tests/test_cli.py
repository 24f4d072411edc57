"""The ``whyops-local`` command: serves on the port it prints, stops cleanly, runs management commands."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.core.management import find_commands

from .servers import ROOT, run_cli, writer_pids


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "whyops_local.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", **(env or {})}, timeout=60)


def _session_survivors(session: int) -> list[str]:
    ps = subprocess.run(["ps", "-s", str(session), "-o", "stat=,args="], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if not line.lstrip().startswith("Z")]  # exited, unreaped


def test_serve_on_port_0_prints_the_port_it_picked_and_serves_there(tmp_path):
    with run_cli("serve", "--port", "0", "--data-dir", str(tmp_path)) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert port != 8000 and server.url == f"http://127.0.0.1:{port}"
        assert f"data in {tmp_path / 'whyops.sqlite3'}" in server.output()
        assert f'analyse_base_url="{server.url}/api"' in server.output()
        assert httpx.get(f"{server.api}/health").json()["status"] == "ok"
        answer = httpx.post(f"{server.api}/events/ingest", json={"eventType": "user_message", "traceId": "cli", "agentName": "a"})
        assert answer.status_code == 201
        assert "cli" in httpx.get(f"{server.url}/").text


def test_ctrl_c_stops_it_and_its_writer_without_leftovers_keeping_what_was_stored(tmp_path):
    with run_cli("--port", "0", "--data-dir", str(tmp_path)) as server:  # serve is the default command
        answer = httpx.post(f"{server.api}/events/ingest", json={"eventType": "user_message", "traceId": "bye", "agentName": "a"})
        assert answer.status_code == 201
        assert server.stop(signal.SIGINT) == 0
        session = server.process.pid
    assert "Traceback" not in server.output() and "whyops-writer" not in server.output(), server.output()
    time.sleep(0.5)
    assert _session_survivors(session) == []
    with sqlite3.connect(tmp_path / "whyops.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM whyops_local_event").fetchone() == (1,)


def test_sigterm_stops_it_at_once_even_when_the_writer_gets_it_first(tmp_path):
    # `kill -TERM -PGID` (a service manager, a terminal closing) reaches the writer too, maybe first.
    with run_cli("--port", "0", "--data-dir", str(tmp_path)) as server:
        answer = httpx.post(f"{server.api}/events/ingest", json={"eventType": "user_message", "traceId": "tm", "agentName": "a"})
        assert answer.status_code == 201
        [writer] = writer_pids(server)
        os.kill(writer, signal.SIGTERM)
        time.sleep(0.3)
        assert writer_pids(server) == [writer]  # left for the server to stop
        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=5) == 0
        assert time.monotonic() - started < 5
    assert "Traceback" not in server.output(), server.output()
    with sqlite3.connect(tmp_path / "whyops.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM whyops_local_event").fetchone() == (1,)


def test_a_port_in_use_is_an_error_exit(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _cli("--port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path))
    assert done.returncode == 1
    assert "Address already in use" in done.stderr


def test_a_management_command_runs_through_it_on_the_data_dir_of_the_environment(tmp_path):
    migrated = _cli("migrate", env={"WHYOPS_DATA_DIR": str(tmp_path)})
    assert migrated.returncode == 0, migrated.stderr
    shown = _cli("showmigrations", "whyops_local", env={"WHYOPS_DATA_DIR": str(tmp_path)})
    assert shown.returncode == 0 and "[X] 0001_initial" in shown.stdout, shown.stdout + shown.stderr


def test_help_lists_serve_demo_and_the_projects_own_management_commands():
    done = _cli("--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    ours = find_commands(str(Path(ROOT, "whyops_local", "management")))
    assert {"serve", "demo", *ours} <= listed, done.stdout


def test_an_unknown_command_is_an_error_exit():
    done = _cli("frobnicate")
    assert done.returncode != 0
    assert "Unknown command: 'frobnicate'" in done.stderr and "whyops-local help" in done.stderr
