"""Shared fixtures: the real Kafka broker and the real PostgreSQL server.

Found in the order of infra.discovery: an address in the environment, testcontainers when
a Docker engine answers, else the local ones that infra/ starts. When none can be had the
fixture fails with what to install; a test that needs them is never skipped silently.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from infra import discovery

USED: dict[str, str] = {}


@pytest.fixture(scope="session")
def kafka() -> Iterator[discovery.KafkaEndpoint]:
    with discovery.kafka() as endpoint:
        USED["kafka"] = (f"Apache Kafka {discovery.broker_version(endpoint)} ({endpoint.kind}) "
                         f"at {endpoint.bootstrap_servers}")
        yield endpoint


@pytest.fixture(scope="session")
def bootstrap(kafka: discovery.KafkaEndpoint) -> str:
    return kafka.bootstrap_servers


@pytest.fixture(scope="session")
def postgres() -> Iterator[discovery.PostgresEndpoint]:
    with discovery.postgres() as endpoint:
        with psycopg.connect(endpoint.url("postgres")) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        USED["postgres"] = f"PostgreSQL {version} ({endpoint.kind})"
        yield endpoint


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(store_kind: str, request: pytest.FixtureRequest, tmp_path):
    """A factory of fresh, empty stores of the parametrised kind, one per name."""

    def make(name: str) -> str:
        if store_kind == "sqlite":
            return f"sqlite:///{tmp_path}/{name}.db"
        postgres = request.getfixturevalue("postgres")
        database = f"t_{name}_{uuid.uuid4().hex[:10]}"
        postgres.create_database(database)
        return postgres.url(database)

    return make


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if USED:
        terminalreporter.section("infrastructure used")
        for line in USED.values():
            terminalreporter.write_line(line)
