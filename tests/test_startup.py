"""`manage.py runserver` on a fresh data dir: migrates by itself, says where things are, stops cleanly."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import httpx

from .servers import ROOT, free_port, run_server, wait_until_up


def test_runserver_migrates_and_prints_the_data_path_and_base_urls(server):
    log = (server.data_dir / f"server-{server.port}.log").read_text()
    assert f"data in {server.sqlite_path}" in log
    assert f'analyse_base_url="{server.url}/api"' in log and f'proxy_base_url="{server.url}/proxy"' in log
    assert "unapplied migration" not in log
    assert httpx.get(f"{server.api}/traces").status_code == 200  # the tables exist
    assert (server.data_dir / "secret_key").stat().st_mode & 0o077 == 0  # generated, private


def test_ctrl_c_stops_the_server_and_its_writer_quietly_keeping_what_was_stored(tmp_path):
    port = free_port()
    process = subprocess.Popen(  # with the autoreloader, as the README runs it
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/health", process)
        answer = httpx.post(f"http://127.0.0.1:{port}/api/events/ingest",
                            json={"eventType": "user_message", "traceId": "bye", "agentName": "a"})
        assert answer.status_code == 201
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        output = process.communicate(timeout=15)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "Traceback" not in output and "whyops-writer" not in output and "stopped" not in output, output
    time.sleep(0.5)
    session = subprocess.run(["ps", "-s", str(process.pid), "-o", "stat=,args="], capture_output=True, text=True).stdout
    survivors = [line for line in session.splitlines() if not line.lstrip().startswith("Z")]  # exited, unreaped
    assert survivors == [], survivors
    with sqlite3.connect(tmp_path / "whyops.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM whyops_local_event").fetchone() == (1,)


def test_a_terminated_server_stops_at_once_with_its_writer(tmp_path):
    """SIGTERM (a service manager, the test harness) ends the server in its own time, not a timeout's."""
    with run_server(tmp_path) as server:
        assert httpx.post(f"{server.api}/events/ingest",
                          json={"eventType": "user_message", "traceId": "t", "agentName": "a"}).status_code == 201
        children = [int(pid) for pid in open(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read().split()]
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("the server took more than 5 s to stop") from None
    def gone(pid: int) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, unreaped
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 3  # the writer and multiprocessing's tracker follow within moments
    while not all(gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(gone(pid) for pid in children)
