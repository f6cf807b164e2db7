"""Topics deleted and created again under running services (issue 14, item 1), as when a
Kafka cluster is rebuilt or restored: every referral still gets its trajectory, once, and
reporting counts each once. The four services run as their own processes on a broker of
the test's own (it deletes the event topics) and their embedded SQLite stores.

Before positions belonged to a topic's incarnation, the consumers resumed at the offsets
their stores remembered, which lay past the new topics' first records: those were skipped
without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from contracts.kafka import ensure_topics
from contracts.topics import EVENT_TOPICS
from infra.demo import write_credentials
from infra.kafka import LocalKafka, free_port
from tests.faults.chaos import ServiceProcess, plan_referrals, stop_all, tail

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

SERVICES = ("intake", "trajectory", "coaching", "reporting")
BEFORE, AFTER = 8, 8  # referrals posted before and after the topics are recreated


def test_topics_recreated_under_running_services_skip_nothing(tmp_path: Path) -> None:
    planned = plan_referrals(BEFORE + AFTER, random.Random(1414))
    with contextlib.ExitStack() as stack:
        broker = LocalKafka(data_dir=tmp_path / "kafka")
        stack.callback(broker.stop, timeout=10)
        broker.start()
        credentials, tokens = write_credentials(tmp_path / "config")
        services = _services(tmp_path, broker.bootstrap_servers, credentials)
        stack.callback(stop_all, list(services.values()))
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_healthy()
        region = {"Authorization": f"Bearer {tokens['region-staff']}"}
        figures_url = f"{services['reporting'].url}/figures"

        def figures() -> dict:
            return httpx.get(figures_url, headers=region, timeout=10).json()["trajectories"]

        last: dict = {}

        def settled(count: int) -> dict | None:
            found = last["figures"] = figures()
            eligible = sum(p.eligible for p in planned[:count])
            return found if (found["referrals"], found["trajectories"]["opened"]) == (count, eligible) else None

        for item in planned[:BEFORE]:
            _post(services["intake"].url, tokens, item)
        _wait(lambda: settled(BEFORE), lambda: f"the first {BEFORE} referrals in reporting: {last}", services)

        asyncio.run(_recreate(broker.bootstrap_servers, EVENT_TOPICS))

        for item in planned[BEFORE:]:
            _post(services["intake"].url, tokens, item)
        found = _wait(lambda: settled(BEFORE + AFTER), lambda: f"every referral, old and new, in reporting: {last}",
                      services)
        assert found["referred"] == sum(p.eligible for p in planned)
        # Nothing seen twice either: the relays published their logs again onto the new
        # topics, and every consumer read them again from the start.
        time.sleep(3)
        assert settled(BEFORE + AFTER) == found
        for service in services.values():
            assert service.running, f"{service.name} stopped:\n{tail(service.log_file)}"
        logs = (tmp_path / "logs" / "trajectory.log").read_text()
        assert "inbox_topic_recreated" in logs, "the consumer said nothing about the new topic"


async def _recreate(bootstrap: str, topics: tuple[str, ...]) -> None:
    """Deletes the topics, waits until they are gone, and creates them again, empty."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(topics))
        deadline = time.monotonic() + 60
        while set(topics) & set(await admin.list_topics()):
            assert time.monotonic() < deadline, "topics not deleted"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    await asyncio.sleep(1)  # the deletion reaches the broker's log manager
    await ensure_topics(bootstrap)


def _post(url: str, tokens: dict[str, str], item) -> None:
    headers = {"Authorization": f"Bearer {tokens[f'{item.municipality}-case-system']}",
               "Idempotency-Key": f"recreated-{item.index}"}
    for _ in range(50):
        with contextlib.suppress(httpx.TransportError):
            response = httpx.post(f"{url}/referrals", json=item.body, headers=headers, timeout=20)
            if response.status_code == 201:
                return
            assert response.status_code >= 500, response.text
        time.sleep(0.2)
    raise AssertionError(f"referral {item.index} not acknowledged")


def _wait(check, what, services: dict[str, ServiceProcess], timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, KeyError):
            if found := check():
                return found
        time.sleep(0.5)
    logs = "\n".join(f"--- {s.name}\n{tail(s.log_file, 15)}" for s in services.values())
    raise AssertionError(f"not in {timeout:.0f} s: {what()}\n{logs}")


def _services(tmp_path: Path, bootstrap: str, credentials: Path) -> dict[str, ServiceProcess]:
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(SERVICES):
        ports = {name: free_port() for name in SERVICES}
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, TWEESPOOR_CREDENTIALS_FILE=str(credentials),
               TWEESPOOR_DATA_DIR=str(tmp_path / "data"),
               INTAKE_PSEUDONYM_KEY="recreated-test-key-" + uuid.uuid4().hex)
    for name in SERVICES:
        env.pop(f"{name.upper()}_DATABASE_URL", None)  # the embedded SQLite files
        env[f"{name.upper()}_PORT"] = str(ports[name])
    for name in ("intake", "trajectory", "coaching"):
        env[f"REPORTING_{name.upper()}_URL"] = f"http://127.0.0.1:{ports[name]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    return {name: ServiceProcess(name, env, ports[name], logs / f"{name}.log", tmp_path) for name in SERVICES}
