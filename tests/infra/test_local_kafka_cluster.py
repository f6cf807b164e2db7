"""A three-node KRaft cluster on this machine (`infra.kafka.LocalKafkaCluster`): it starts,
topics are created replicated three times with min.insync.replicas 2, a node killed with
SIGKILL does not stop acks=all idempotent writes, and the node comes back into the ISR.

One cluster for the module: three JVMs are the most this 2-core machine should start twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts import kafka
from contracts.kafka import KafkaSecurity, Replication
from contracts.topics import Topic
from infra.cli import build_parser
from infra.kafka import CLUSTER_JVM_OPTS, LocalKafkaCluster, port_open

PLAINTEXT = KafkaSecurity()  # explicit, whatever the environment says
TOPIC = f"tweespoor.cluster-test.{uuid.uuid4().hex[:8]}.v1"


def test_the_command_line_takes_a_number_of_brokers():
    args = build_parser().parse_args(["kafka", "start", "--brokers", "3", "--port", "19092"])
    assert (args.brokers, args.port) == (3, 19092)
    assert build_parser().parse_args(["kafka", "start"]).brokers == 1  # `make run`'s single node


def test_a_cluster_keeps_its_ports_and_asks_for_little_memory(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("TWEESPOOR_KAFKA_HEAP", raising=False)
    first = LocalKafkaCluster(3, data_dir=tmp_path)
    again = LocalKafkaCluster(3, data_dir=tmp_path)
    assert again.bootstrap_servers == first.bootstrap_servers
    assert len(set(first.bootstrap_servers.split(","))) == 3
    assert [n.node_id for n in first.nodes] == [1, 2, 3]
    assert {n.voters for n in first.nodes} == {first.nodes[0].voters}
    assert first.nodes[0].jvm_options == CLUSTER_JVM_OPTS
    with pytest.raises(RuntimeError, match="3 nodes, not 2"):
        LocalKafkaCluster(2, data_dir=tmp_path)
    monkeypatch.setenv("TWEESPOOR_KAFKA_HEAP", "-Xms64m -Xmx256m")
    assert LocalKafkaCluster(3, data_dir=tmp_path).nodes[2].jvm_options == ["-Xms64m", "-Xmx256m"]
    assert LocalKafkaCluster(3, data_dir=tmp_path, heap=["-Xmx1g"]).nodes[0].jvm_options == ["-Xmx1g"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[LocalKafkaCluster]:
    started = time.monotonic()
    cluster = LocalKafkaCluster(3, data_dir=tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        print(f"3-node cluster started in {time.monotonic() - started:.1f} s")
        yield cluster
    finally:
        cluster.stop(timeout=15)


async def _configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = kafka.admin(bootstrap, security=PLAINTEXT)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(error, _, _, _, entries)] = response.resources
    assert error == 0
    return {name: value for name, value, *_ in entries}


async def _brokers(bootstrap: str) -> list[int]:
    admin = kafka.admin(bootstrap, security=PLAINTEXT)
    await admin.start()
    try:
        return sorted(b["node_id"] for b in (await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


@pytest.mark.kafka
def test_topics_are_replicated_three_times_with_two_in_sync(cluster: LocalKafkaCluster, monkeypatch):
    monkeypatch.delenv("TWEESPOOR_KAFKA_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS", raising=False)
    assert asyncio.run(_brokers(cluster.bootstrap_servers)) == [1, 2, 3]
    created = asyncio.run(kafka.ensure_topics(cluster.bootstrap_servers, (Topic(TOPIC),), security=PLAINTEXT))
    assert created == [TOPIC]
    partitions = asyncio.run(cluster.describe_topic(TOPIC, PLAINTEXT))
    assert sorted(partitions) == [0, 1, 2]
    for p in partitions.values():
        assert sorted(p["replicas"]) == [1, 2, 3] and sorted(p["isr"]) == [1, 2, 3], p
    configs = asyncio.run(_configs(cluster.bootstrap_servers, TOPIC))
    assert configs["min.insync.replicas"] == "2"
    assert configs["retention.ms"] == "-1"
    # Again: nothing to create. And a factor the cluster cannot hold is refused, not tried.
    assert asyncio.run(kafka.ensure_topics(cluster.bootstrap_servers, (Topic(TOPIC),), security=PLAINTEXT)) == []
    with pytest.raises(ValueError, match="has 3 brokers"):
        asyncio.run(kafka.ensure_topics(cluster.bootstrap_servers, (Topic(f"{TOPIC}.more"),), security=PLAINTEXT,
                                        replication=Replication(factor=4)))


async def _send(bootstrap: str, topic: str, count: int) -> list[float]:
    """acks=all idempotent sends, one after the other; the seconds each took."""
    producer = kafka.producer(bootstrap, "cluster-test", security=PLAINTEXT)
    await producer.start()
    took = []
    try:
        for i in range(count):
            started = time.monotonic()
            await asyncio.wait_for(producer.send_and_wait(topic, f"record {i}".encode(), key=str(i).encode()), 30)
            took.append(time.monotonic() - started)
    finally:
        await producer.stop()
    return took


async def _count(bootstrap: str, topic: str) -> int:
    consumer = kafka.reader(bootstrap, security=PLAINTEXT)
    await consumer.start()
    try:
        ends = await kafka.read_from_start(consumer, [topic])
        return sum(ends.values())
    finally:
        await consumer.stop()


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.mark.kafka
def test_a_killed_node_stops_no_write_and_rejoins_the_isr(cluster: LocalKafkaCluster):
    before = asyncio.run(_count(cluster.bootstrap_servers, TOPIC))
    victim = asyncio.run(cluster.leader_of(TOPIC, 0, PLAINTEXT))
    assert victim in (1, 2, 3)
    port = cluster.node(victim).port
    cluster.kill_node(victim)
    assert not port_open(port)

    took = asyncio.run(_send(cluster.bootstrap_servers, TOPIC, 30))
    print(f"30 acks=all sends with node {victim} killed; slowest {max(took):.1f} s")
    assert asyncio.run(_count(cluster.bootstrap_servers, TOPIC)) == before + 30

    def without_victim() -> bool:
        partitions = asyncio.run(cluster.describe_topic(TOPIC, PLAINTEXT))
        return all(p["leader"] not in (victim, -1) and victim not in p["isr"] and len(p["isr"]) == 2
                   for p in partitions.values())

    _wait(without_victim, 30, f"node {victim} out of every ISR, a new leader for each partition")

    started = time.monotonic()
    cluster.restart_node(victim)
    assert cluster.running

    def rejoined() -> bool:
        partitions = asyncio.run(cluster.describe_topic(TOPIC, PLAINTEXT))
        return all(sorted(p["isr"]) == [1, 2, 3] for p in partitions.values())

    _wait(rejoined, 60, f"node {victim} back in every ISR")
    print(f"node {victim} restarted and back in the ISR in {time.monotonic() - started:.1f} s")
    assert asyncio.run(_send(cluster.bootstrap_servers, TOPIC, 5))
    assert asyncio.run(_count(cluster.bootstrap_servers, TOPIC)) == before + 35


@pytest.mark.kafka
def test_the_cluster_stops_every_node(cluster: LocalKafkaCluster):
    ports = [node.port for node in cluster.nodes] + [node.controller_port for node in cluster.nodes]
    pids = [node.pid for node in cluster.nodes]
    started = time.monotonic()
    cluster.stop(timeout=15)
    print(f"cluster stopped in {time.monotonic() - started:.1f} s")
    assert not any(node.running for node in cluster.nodes)
    assert not any(port_open(p) for p in ports)
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    cluster.stop()  # idempotent
