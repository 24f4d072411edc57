"""The data folder is the user's alone: the database, its -wal and -shm files and the secret key are 0600,
and files an older version left readable to everyone are made private at start-up."""

import stat

import httpx

from .servers import run_server


def test_every_file_the_server_keeps_is_private_to_the_user(tmp_path):
    with run_server(tmp_path) as running:
        answer = httpx.post(f"{running.api}/events/ingest", timeout=10,
                            json={"eventType": "user_message", "traceId": "t", "agentName": "a", "content": "hi"})
        assert answer.status_code == 201
        made = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()
                if path.is_file() and not path.name.startswith("server-")}  # the test's own log
    assert {"whyops.sqlite3", "whyops.sqlite3-wal", "whyops.sqlite3-shm", "secret_key"} <= set(made)
    assert all(mode & 0o077 == 0 for mode in made.values()), made


def test_files_left_readable_by_an_older_version_are_made_private(tmp_path):
    with run_server(tmp_path):
        pass
    database = tmp_path / "whyops.sqlite3"
    database.chmod(0o644)
    with run_server(tmp_path):
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
