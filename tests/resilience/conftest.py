"""Fixtures for the outage, soak and restore tests: servers of the test's own, always stopped and
removed afterwards, even when the test fails (see servers.py)."""
import pytest

from tests.integration.conftest import process_env, queue, start_worker  # noqa: F401 - the real worker
from tests.resilience.servers import PostgresCluster, RedisServer
from tests.scheduled.conftest import receiver  # noqa: F401 - the local webhook receiver


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis.log")
    yield server.start()
    server.stop()


@pytest.fixture
def pg_cluster():
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
