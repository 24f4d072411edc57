"""Faults of the database answered as JSON, never as an error page, and outlived without a restart: a full
disk (507), a read-only database (503), its file deleted or replaced while the server runs (503, or the new
file written to). Nothing acknowledged is lost: a proxied call answered meanwhile is stored once the
database takes writes again."""

import os
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from .proxy_fixtures import read_trace
from .servers import run_server, writer_pids

MESSAGES = [{"role": "user", "content": "hi"}]


def ingest(server, trace_id: str, content: str = "hello") -> httpx.Response:
    return httpx.post(f"{server.api}/events/ingest", timeout=30,
                      json={"eventType": "user_message", "traceId": trace_id, "agentName": "faults", "content": content})


def stored_traces(path: Path) -> set[str]:
    """The trace ids in the database file at ``path``, read from the file itself rather than through the server."""
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT trace_id FROM whyops_local_trace")}


def proxied_call(server, trace_id: str) -> None:
    answer = httpx.post(f"{server.proxy}/v1/chat/completions", headers={"X-Trace-ID": trace_id}, timeout=30,
                        json={"model": "gpt-4o-mini", "messages": MESSAGES})
    assert answer.status_code == 200


def assert_refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert words in answer.json()["error"] and answer.json()["details"] == []


@contextmanager
def small_disk(where: Path, megabytes: int):
    """A tmpfs of that size at ``where``; the test is skipped where it cannot be mounted (not root)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_full_disk_answers_507_and_nothing_acknowledged_is_lost_once_space_is_freed(fake_upstream, tmp_path):
    """A real full disk: the data folder on a small tmpfs, filled up by another file. SQLite's
    ``max_page_count`` would fake SQLITE_FULL only on a connection the test cannot reach, and a full disk
    also refuses the WAL file's growth, which is what a commit meets first."""
    with small_disk(tmp_path / "disk", 24) as disk:
        env = {"WHYOPS_DATA_DIR": str(disk / "data"), "WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}
        with run_server(tmp_path, env=env) as server:
            assert ingest(server, "before").status_code == 201
            filler = disk / "filler"
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            answers = [ingest(server, f"full-{n}", "x" * 100_000) for n in range(20)]
            refused = [a for a in answers if a.status_code != 201]
            assert refused, "the disk never filled up"
            for answer in refused:
                assert_refused(answer, 507, "disk holding the database is full")
            proxied_call(server, "answered-while-full")  # answered now, recorded once there is room
            filler.unlink()
            assert ingest(server, "after").status_code == 201
            assert read_trace(server, "answered-while-full", 2, timeout=15)["eventCount"] == 2
            acknowledged = {"before", "after", *(f"full-{n}" for n, a in enumerate(answers) if a.status_code == 201)}
            assert acknowledged <= stored_traces(disk / "data" / "whyops.sqlite3")


def test_a_read_only_database_answers_503_until_it_is_made_writable_again_without_a_restart(tmp_path):
    """Tests run as root, for whom file modes do not stop writes: the server runs without the capability
    that lets root ignore them (CAP_DAC_OVERRIDE), as a user owning the files does. A file made read-only
    stops only connections opened after: the writer process is killed so that the next one opens it
    (read-only, as SQLite then does); once the file is writable again, writes must work without a restart."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE")
    with run_server(tmp_path, wrapper=("setpriv", "--bounding-set", "-dac_override", "--")) as server:
        database = server.sqlite_path
        assert ingest(server, "before").status_code == 201
        database.chmod(0o444)
        [writer] = writer_pids(server)
        os.kill(writer, signal.SIGKILL)
        time.sleep(0.5)  # the server notices its writer is gone
        assert_refused(ingest(server, "while-read-only"), 503, "cannot be written")
        assert_refused(ingest(server, "while-read-only"), 503, "cannot be written")
        database.chmod(0o644)
        assert ingest(server, "after").status_code == 201
        assert stored_traces(database) == {"before", "after"}


@pytest.fixture
def running(fake_upstream, tmp_path):
    with run_server(tmp_path, env={"WHYOPS_OPENAI_BASE_URL": fake_upstream.url + "/v1"}) as server:
        assert ingest(server, "before").status_code == 201
        yield server


def backup(path: Path, to: Path) -> None:
    with sqlite3.connect(path) as source, sqlite3.connect(to) as copy:
        source.backup(copy)


def test_a_deleted_database_answers_503_and_is_written_again_once_put_back(running, tmp_path):
    database = running.sqlite_path
    backup(database, tmp_path / "backup.sqlite3")
    database.unlink()
    assert_refused(ingest(running, "while-deleted"), 503, "was deleted")
    proxied_call(running, "answered-while-deleted")
    time.sleep(0.5)
    assert not database.exists()  # the writer made no empty database in its place
    shutil.copy(tmp_path / "backup.sqlite3", database)
    assert ingest(running, "after").status_code == 201
    read_trace(running, "answered-while-deleted", 2, timeout=15)
    assert stored_traces(database) == {"before", "after", "answered-while-deleted"}


def test_an_empty_database_left_in_place_of_a_deleted_one_answers_503(running):
    """Anything opening the path of a deleted SQLite file (a page being read) makes an empty one there."""
    database = running.sqlite_path
    database.unlink()
    sqlite3.connect(database).close()
    assert_refused(ingest(running, "into-nothing"), 503, "no whyops-local tables")


def test_a_replaced_database_file_is_the_one_written_to(running, tmp_path):
    """A backup put in the database's place: what the old file held after the backup is not in it, and
    later writes go to it (not to the old file, nor into its WAL, which the new file would then read)."""
    database = running.sqlite_path
    replacement = tmp_path / f"{uuid.uuid4()}.sqlite3"
    backup(database, replacement)
    assert ingest(running, "only-in-the-old-file").status_code == 201
    os.replace(replacement, database)
    assert ingest(running, "after").status_code == 201
    assert stored_traces(database) == {"before", "after"}
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
