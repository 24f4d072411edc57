"""`manage.py runserver` on a fresh data dir: migrates by itself and says where things are."""

import httpx


def test_runserver_migrates_and_prints_the_data_path_and_base_urls(server):
    log = (server.data_dir / f"server-{server.port}.log").read_text()
    assert f"data in {server.sqlite_path}" in log
    assert f'analyse_base_url="{server.url}/api"' in log and f'proxy_base_url="{server.url}/proxy"' in log
    assert "unapplied migration" not in log
    assert httpx.get(f"{server.api}/traces").status_code == 200  # the tables exist
    assert (server.data_dir / "secret_key").stat().st_mode & 0o077 == 0  # generated, private
