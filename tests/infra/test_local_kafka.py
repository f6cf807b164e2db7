"""The local Kafka broker that infra/ runs on the JVM: start, use, restart, crash, stop."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka import LocalKafka, port_open
from infra.versions import KAFKA_VERSION, pom_kafka_version


def test_pom_and_versions_agree() -> None:
    assert pom_kafka_version() == KAFKA_VERSION


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, count: int) -> list[bytes | None]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        return [(await asyncio.wait_for(consumer.getone(), timeout=30)).value for _ in range(count)]
    finally:
        await consumer.stop()


def _processes_in_group(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            found.append(int(stat.parent.name))
    return found


def _java_children() -> list[int]:
    """Java children of this process (a broker other tests share may be among them)."""
    kids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if ppid == os.getpid() and comm == "java":
            kids.append(int(proc.name))
    return kids


@pytest.mark.kafka
def test_local_kafka_keeps_records_across_restart_and_crash(tmp_path: Path) -> None:
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    broker = LocalKafka(data_dir=tmp_path / "kafka")
    try:
        broker.start()
        port, first_pid = broker.port, broker.pid
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        asyncio.run(_create_topic(broker.bootstrap_servers, topic))
        asyncio.run(_produce(broker.bootstrap_servers, topic, b"hello"))
        assert asyncio.run(_consume(broker.bootstrap_servers, topic, 1)) == [b"hello"]

        broker.restart()  # clean shutdown, same dir and ports
        assert broker.port == port and broker.pid != first_pid
        assert asyncio.run(_consume(broker.bootstrap_servers, topic, 1)) == [b"hello"]

        # A crash right after an acknowledged write: the record is in the page cache.
        asyncio.run(_produce(broker.bootstrap_servers, topic, b"before-crash"))
        broker.kill()
        assert not port_open(port)
        broker.start()
        assert asyncio.run(_consume(broker.bootstrap_servers, topic, 2)) == [b"hello", b"before-crash"]

        pid = broker.pid
        assert pid is not None
        broker.stop()
        assert not broker.running
        assert not port_open(port)
        assert not port_open(broker.controller_port)
        assert _processes_in_group(pid) == []
        assert pid not in _java_children()
        broker.stop()  # idempotent
    finally:
        broker.close()


@pytest.mark.kafka
def test_local_kafka_context_manager_cleans_up() -> None:
    with LocalKafka() as broker:
        data_dir, port, pid = broker.data_dir, broker.port, broker.pid
        assert port_open(port)
    assert not port_open(port)
    assert not data_dir.exists()  # a temporary data dir goes with the broker
    assert pid not in _java_children()
