"""`tweespoor-reporting rebuild` as an operator runs it: in processes of its own (spawned
from the console script), on the real event topics, giving the bytes of a one-process
rebuild of the same records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import kafka
from contracts.envelope import to_record
from contracts.topics import EVENT_TOPICS
from reporting.rebuild import rebuild
from reporting.store import ReportingStore
from services.reporting.tests.factory import placed_trajectory, rejected

pytestmark = [pytest.mark.kafka]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "tweespoor-reporting"  # the console script itself
    return subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=240)


async def test_the_cli_rebuilds_in_two_processes_the_bytes_of_one(bootstrap, tmp_path):
    await kafka.ensure_topics(bootstrap)
    producer = kafka.producer(bootstrap, "rebuild-cli-test")
    await producer.start()
    try:
        for event in [e for i in range(12) for e in placed_trajectory(["alkmaar", "bergen"][i % 2])] + rejected():
            service = event.attributes.source.rsplit("tweespoor-", 1)[1]
            key, value, headers = to_record(event)
            topic = next(t for t in EVENT_TOPICS if f".{service}." in t)
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "REPORTING_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}

    done = _cli("rebuild", "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["records"] >= 12 * len(placed_trajectory()) + len(rejected())

    reference = ReportingStore(f"sqlite:///{tmp_path}/reference.db")
    again = await rebuild(reference, bootstrap, EVENT_TOPICS, workers=1)
    cli = ReportingStore(f"sqlite:///{tmp_path}/cli.db")
    assert again["records"] == summary["records"] and again["applied"] == summary["applied"]
    assert cli.dump() == reference.dump() and cli.documents("trajectory", ["bergen"])
    cli.close()
    reference.close()


def test_the_cli_refuses_fewer_than_one_process(tmp_path):
    done = _cli("rebuild", "--workers", "0",
                env={**os.environ, "REPORTING_DATABASE_URL": f"sqlite:///{tmp_path}/r.db"})
    assert done.returncode == 2 and "--workers must be at least 1" in done.stderr
