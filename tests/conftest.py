import pytest

from .servers import run_server

pytest_plugins = ["tests.proxy_fixtures"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real whyops-local server (daphne via manage.py runserver) on a free port, own data dir."""
    with run_server(tmp_path_factory.mktemp("whyops-data")) as running:
        yield running
