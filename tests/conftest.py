"""Shared fixtures: the real Kafka broker and the real PostgreSQL server.

Found in the order of infra.discovery: an address in the environment, testcontainers when
a Docker engine answers, else the local ones that infra/ starts. When none can be had the
fixture fails with what to install; a test that needs them is never skipped silently.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra import discovery

USED: dict[str, str] = {}


@pytest.fixture(scope="session")
def kafka(tmp_path_factory) -> Iterator[discovery.KafkaEndpoint]:
    with discovery.kafka() as endpoint:
        USED["kafka"] = (f"Apache Kafka {discovery.broker_version(endpoint)} ({endpoint.kind}) "
                         f"at {endpoint.bootstrap_servers}")
        yield endpoint
        # After every test that used the broker: nothing personal on any topic or in any log.
        problems = asyncio.run(_privacy_scan(endpoint, tmp_path_factory.getbasetemp()))
        assert not problems, "personal data found:\n" + "\n".join(sorted(set(problems))[:20])


async def _privacy_scan(endpoint: discovery.KafkaEndpoint, basetemp: Path) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    from tests.support.kafka_tools import read_all
    from tests.support.privacy_scan import findings, personal_data_used_in_tests

    admin = AIOKafkaAdminClient(bootstrap_servers=endpoint.bootstrap_servers)
    await admin.start()
    topics = [t for t in await admin.list_topics() if not t.startswith("__")]
    await admin.close()
    texts: list[tuple[str, str]] = []
    for topic in topics:
        for record in await read_all(endpoint.bootstrap_servers, topic):
            texts.append((f"{topic}@{record.offset}", (record.value or b"").decode(errors="replace")))
            texts.extend((f"{topic}@{record.offset} {k}", v.decode(errors="replace"))
                         for k, v in record.headers or ())
    logs = list(basetemp.rglob("*.log")) + list(basetemp.rglob("*.out"))
    if endpoint.controller is not None:
        logs.append(Path(endpoint.controller.log_file))
    texts.extend((str(path.name), path.read_text(errors="replace")) for path in logs if path.is_file())
    USED["privacy"] = (f"privacy scan: {len(topics)} topics and {len(logs)} log files, "
                       "no BSN, name or date of birth")
    return findings(texts, personal_data_used_in_tests())


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
