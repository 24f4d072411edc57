import pytest

from .servers import run_server

pytest_plugins = ["tests.proxy_fixtures"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real whyops-local server (daphne via manage.py runserver) on a free port, own data dir."""
    with run_server(tmp_path_factory.mktemp("whyops-data")) as running:
        yield running


@pytest.fixture
def migrate_to():
    """``migrate_to(targets)`` moves the test database to those migrations and returns their models; the
    database is put back at the newest migrations after the test, so later tests meet today's schema."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    def migrate(targets):
        executor = MigrationExecutor(connection)
        executor.migrate(targets)
        return executor.loader.project_state(targets).apps

    yield migrate
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
