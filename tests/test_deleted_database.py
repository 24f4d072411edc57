"""Reads of a server whose SQLite file was deleted, emptied or replaced by another file while it ran: every
read route answers 503 JSON, every page a plain 503 page, each saying what happened to the file and what to
do; no read makes an empty database in its place; once the file is back, reads work without a restart.
And the proxied calls' records the database refused meanwhile are held within WHYOPS_UNSTORED_MAX_MB."""

import json
import os
import re
import shutil
import sqlite3
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .proxy_fixtures import read_trace
from .servers import ON_POSTGRES, run_server
from .test_storage_faults import assert_refused, backup, ingest, proxied_call, stored_traces

pytestmark = pytest.mark.skipif(ON_POSTGRES, reason="faults of the SQLite file")

READ_ROUTES = ["/api/health", "/api/traces", "/api/traces/before", "/api/traces/before/export", "/api/agents",
               "/api/agents/faults", "/api/users/someone", "/api/models", "/api/traces?q=hello"]
PAGES = ["/", "/traces/before", "/agents/", "/agents/faults/", "/users/", "/compare/?a=before&b=before"]


@pytest.fixture
def running(fake_upstream, tmp_path):
    env = {"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1", "WHYOPS_UNSTORED_MAX_MB": "0.02"}
    with run_server(tmp_path, env=env) as server:
        assert ingest(server, "before").status_code == 201
        proxied_call(server, "before")
        read_trace(server, "before", 3)
        yield server


def exchange_routes(server) -> list[str]:
    [exchange] = {event["exchangeId"] for event in read_trace(server, "before", 3)["events"] if event.get("exchangeId")}
    return [f"/api/exchanges/{exchange}", f"/api/exchanges/{exchange}/request"]


def assert_read_refused(server, routes: list[str], words: str) -> None:
    for route in routes:
        assert_refused(httpx.get(server.url + route, timeout=30), 503, words)
    for page in PAGES:
        answer = httpx.get(server.url + page, timeout=30)
        assert answer.status_code == 503, (page, answer.text)
        assert answer.headers["content-type"].startswith("text/html")
        assert "The database is unavailable" in answer.text and words in answer.text, answer.text


def test_reads_answer_503_while_the_file_is_deleted_and_work_again_once_it_is_put_back(running, tmp_path):
    routes = READ_ROUTES + exchange_routes(running)
    database = running.sqlite_path
    backup(database, tmp_path / "backup.sqlite3")
    database.unlink()
    assert_read_refused(running, routes, "was deleted or moved while the server ran: put it back")
    assert not database.exists()  # no read made an empty database in its place
    shutil.copy(tmp_path / "backup.sqlite3", database)
    once_the_writer_let_go(running)
    for route in routes:
        assert httpx.get(running.url + route, timeout=30).status_code == 200, route
    for page in PAGES:
        assert httpx.get(running.url + page, timeout=30).status_code == 200, page


def once_the_writer_let_go(server) -> None:
    """Reads answer 503 "was replaced" until the writer has let go of the old file (within seconds)."""
    deadline = time.monotonic() + 10
    while "was replaced while the server ran" in (answer := httpx.get(f"{server.api}/traces", timeout=30)).text:
        assert answer.status_code == 503 and time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("contents", [b"", b"not a database\n" * 100], ids=["emptied", "not-a-database"])
def test_a_file_that_is_no_whyops_database_in_its_place_answers_503(running, tmp_path, contents):
    database = running.sqlite_path
    replacement = tmp_path / "replacement"
    replacement.write_bytes(contents)
    os.replace(replacement, database)
    once_the_writer_let_go(running)
    assert_read_refused(running, READ_ROUTES, "is not a whyops-local database")
    assert_refused(ingest(running, "into-it"), 503, "no whyops-local tables")


def test_reads_of_a_replaced_file_never_meet_the_old_files_wal(running, tmp_path):
    """What the old file held after the backup is in its WAL, at the name the new file's WAL would have."""
    database = running.sqlite_path
    replacement = tmp_path / "backup.sqlite3"
    backup(database, replacement)
    assert ingest(running, "only-in-the-old-file").status_code == 201
    os.replace(replacement, database)
    once_the_writer_let_go(running)
    listed = httpx.get(f"{running.api}/traces", timeout=30)
    assert listed.status_code == 200 and {t["traceId"] for t in listed.json()["traces"]} == {"before"}
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert stored_traces(database) == {"before"}


def hello(server, path: str) -> dict:
    with connect(f"ws://127.0.0.1:{server.port}{path}", origin=server.url, open_timeout=30) as socket:
        return json.loads(socket.recv(timeout=30))


def test_live_pages_are_refused_while_the_file_is_deleted_and_served_once_it_is_back(running, tmp_path):
    database = running.sqlite_path
    backup(database, tmp_path / "backup.sqlite3")
    database.unlink()
    for path in ("/ws/traces/", "/ws/traces/before"):
        with pytest.raises(InvalidStatus) as refused:
            hello(running, path)
        assert refused.value.response.status_code == 403
    log = (running.data_dir / f"server-{running.port}.log").read_text()
    assert "refused a live page: The database file" in log and "Exception inside application" not in log
    shutil.copy(tmp_path / "backup.sqlite3", database)
    once_the_writer_let_go(running)
    assert hello(running, "/ws/traces/before")["type"] == "hello"


def held_and_dropped(server) -> dict:
    health = httpx.get(f"{server.api}/health", timeout=30).json()
    return {key: health[key] for key in ("status", "unstoredWaiting", "unstoredDropped")}


def test_records_refused_while_the_file_is_gone_are_held_within_the_cap_and_the_oldest_dropped(running, tmp_path):
    """WHYOPS_UNSTORED_MAX_MB=0.02: 20 kB, a few proxied calls' records."""
    database = running.sqlite_path
    backup(database, tmp_path / "backup.sqlite3")
    database.unlink()
    calls = [f"while-deleted-{n}" for n in range(30)]
    for trace_id in calls:
        proxied_call(running, trace_id)
    deadline = time.monotonic() + 15
    while (figures := held_and_dropped(running))["unstoredWaiting"] + figures["unstoredDropped"] < len(calls):
        assert time.monotonic() < deadline, figures
        time.sleep(0.1)
    held, dropped = figures["unstoredWaiting"], figures["unstoredDropped"]
    assert figures["status"] == "unavailable" and 0 < held < len(calls) and dropped == len(calls) - held
    shutil.copy(tmp_path / "backup.sqlite3", database)
    assert ingest(running, "after").status_code == 201
    read_trace(running, calls[-1], 2, timeout=15)
    assert held_and_dropped(running) == {"status": "degraded", "unstoredWaiting": 0, "unstoredDropped": dropped}
    # The newest ones are kept, the oldest dropped.
    assert stored_traces(database) == {"before", "after", *calls[-held:]}
    log = (running.data_dir / f"server-{running.port}.log").read_text()
    assert len(re.findall("dropping the oldest", log)) == 1
    assert f"but for {dropped} dropped past WHYOPS_UNSTORED_MAX_MB" in log
