"""Pruning while agents write: nothing sent after the cut-off is lost, no request fails, the file shrinks."""

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from whyops_local.management.commands.prune import age

from .servers import ON_POSTGRES, ROOT, run_server


def test_ages_read_as_a_user_writes_them():
    assert age("7d") == timedelta(days=7) and age("12h") == timedelta(hours=12) and age("30m") == timedelta(minutes=30)
    assert age("2") == timedelta(days=2)
    with pytest.raises(Exception, match="not an age"):
        age("a week")


def _seed_old(server, traces: int, size: int = 40_000) -> list[str]:
    old = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    names = [f"old-{uuid.uuid4().hex[:8]}" for _ in range(traces)]
    for name in names:
        events = [{"eventType": "llm_response", "traceId": name, "agentName": "old", "timestamp": old,
                   "metadata": {"model": "m", "provider": "p"},
                   "content": {"content": f"{name} " + os.urandom(size // 2).hex()}}]
        httpx.post(f"{server.api}/events/ingest", json=events, timeout=30).raise_for_status()
    return names


def _used_bytes(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()


class Clients:
    """Eight SDK-like clients ingesting fresh events until stopped; what each sent and any failure."""

    def __init__(self, server):
        self.server, self.stop, self.sent, self.failures = server, threading.Event(), {}, []
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(8)]

    def _run(self, n: int) -> None:
        trace_id, count = f"fresh-{n}-{uuid.uuid4().hex[:6]}", 0
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                answer = client.post(f"{self.server.api}/events/ingest", json={
                    "eventType": "user_message", "traceId": trace_id, "agentName": "fresh",
                    "content": [{"role": "user", "content": f"message {count}"}]})
                if answer.status_code != 201:
                    self.failures.append(answer.text)
                count += 1
        self.sent[trace_id] = count

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def _prune(server, *args: str) -> str:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "whyops_local.settings", "WHYOPS_DATA_DIR": str(server.data_dir)}
    done = subprocess.run([sys.executable, "manage.py", "prune", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(ON_POSTGRES, reason="SQLite's incremental vacuum and file sizes")
def test_pruning_by_age_and_by_size_while_eight_clients_ingest_loses_nothing_newer(tmp_path):
    with run_server(tmp_path) as server:
        assert sqlite3.connect(server.sqlite_path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        old = _seed_old(server, 30)
        kept_old = f"recent-{uuid.uuid4().hex[:6]}"
        httpx.post(f"{server.api}/events/ingest", json={"eventType": "error", "traceId": kept_old, "agentName": "old",
                                                        "timestamp": (datetime.now(UTC) - timedelta(days=6)).isoformat(),
                                                        "content": {"message": "six days old"}}).raise_for_status()
        before = _used_bytes(server.sqlite_path)
        with Clients(server) as clients:
            said = _prune(server, "--older-than", "7d")
        assert "deleted 30 trace(s)" in said
        assert not clients.failures
        for name in old:
            assert httpx.get(f"{server.api}/traces/{name}").status_code == 404
        assert httpx.get(f"{server.api}/traces/{kept_old}").status_code == 200
        for trace_id, count in clients.sent.items():
            assert httpx.get(f"{server.api}/traces/{trace_id}").json()["eventCount"] == count
        after_age = _used_bytes(server.sqlite_path)
        assert after_age < before - 500_000

        # By size the oldest go first, whatever their age; the clients' traces are the newest.
        old = _seed_old(server, 60, size=80_000)
        grown = _used_bytes(server.sqlite_path)
        with Clients(server) as clients:
            _prune(server, "--keep-mb", str(round(after_age / 1024 / 1024 + 2, 2)))
        assert not clients.failures
        assert _used_bytes(server.sqlite_path) < grown - 2_000_000
        assert sum(httpx.get(f"{server.api}/traces/{name}").status_code == 404 for name in old) >= 30
        for trace_id in clients.sent:
            assert httpx.get(f"{server.api}/traces/{trace_id}").status_code == 200
        health = httpx.get(f"{server.api}/health").json()
        assert health["traceCount"] >= 8 and health["eventCount"] > 0 and health["fileBytes"] > 0


def test_a_server_with_retention_days_set_deletes_what_is_older_on_its_own(tmp_path):
    with run_server(tmp_path) as server:
        (old,) = _seed_old(server, 1, size=1000)
        fresh = f"fresh-{uuid.uuid4().hex[:6]}"
        httpx.post(f"{server.api}/events/ingest", json={"eventType": "error", "traceId": fresh, "agentName": "a",
                                                        "content": {"message": "now"}}).raise_for_status()
    with run_server(tmp_path, env={"WHYOPS_RETENTION_DAYS": "7"}) as server:
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.api}/traces/{old}").status_code != 404 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{server.api}/traces/{old}").status_code == 404
        assert httpx.get(f"{server.api}/traces/{fresh}").status_code == 200
