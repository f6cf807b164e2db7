"""Kafka clients as every service uses them, and the idempotent creation of topics."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import TOPICS, Topic

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


def producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer, acks from all in-sync replicas: a send that returned is durable."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
    )


def consumer(bootstrap_servers: str, group: str) -> AIOKafkaConsumer:
    """A group member that commits only what it applied; the store's tracking is the truth."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
    )


async def read_from_start(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Assigns every partition of `topics` (no group), from offset 0; returns where each
    ends now, so a reader knows when it has read everything that was there."""
    partitions = []
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:  # a topic created a moment ago: the client's metadata is behind
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic) or set()
        partitions += [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return await consumer.end_offsets(partitions)


async def ensure_topics(bootstrap_servers: str, topics: tuple[Topic, ...] = TOPICS) -> list[str]:
    """Creates the topics that do not exist yet; returns the names it created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="tweespoor-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = list({t.name: t for t in topics if t.name not in existing}.values())
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(t.name, num_partitions=t.partitions, replication_factor=1,
                         topic_configs=dict(t.config))
                for t in missing
            ]
        )
        created = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:  # another service won the race: fine
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        log.info("topics_created", extra={"topics": created})
        return created
    finally:
        await admin.close()
