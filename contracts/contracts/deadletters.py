"""Dead letters: looking at them, and re-driving them once their cause is fixed.

A re-drive publishes each dead letter of a group back to the topic it came from, with
its original key, value and headers (the `dlq_*` ones removed, a `redriven_from` added),
and then records how far it got in the dead-letter topic under its own consumer group,
so running it twice re-drives nothing twice. Consumers treat a re-driven event like any
other: an event applied before is recognised by its receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts import kafka
from contracts.topics import dead_letter_topic


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    topic: str
    partition: int
    original_offset: int
    reason: str
    type: str | None


def _header(record: Any, name: str) -> str | None:
    return next((v.decode(errors="replace") for k, v in record.headers or () if k == name), None)


async def _read(bootstrap: str, group: str, *, from_committed: bool) -> tuple[AIOKafkaConsumer, list[Any]]:
    topic = dead_letter_topic(group)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{group}-redrive",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                isolation_level="read_committed")
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    committed = await consumer.committed(tp) if from_committed else None
    if committed is None:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, committed)
    end = (await consumer.end_offsets([tp]))[tp]
    records: list[Any] = []
    while await consumer.position(tp) < end:
        records.extend((await consumer.getmany(tp, timeout_ms=500)).get(tp, []))
    return consumer, records


async def list_dead_letters(bootstrap: str, group: str) -> list[DeadLetter]:
    consumer, records = await _read(bootstrap, group, from_committed=False)
    await consumer.stop()
    return [DeadLetter(r.offset, _header(r, "dlq_topic") or "", int(_header(r, "dlq_partition") or -1),
                       int(_header(r, "dlq_offset") or -1), _header(r, "dlq_reason") or "",
                       _header(r, "ce_type")) for r in records]


async def redrive(bootstrap: str, group: str) -> int:
    """Publishes the group's dead letters not re-driven yet back to their topics."""
    consumer, records = await _read(bootstrap, group, from_committed=True)
    producer = kafka.producer(bootstrap, f"{group}-redrive")
    await producer.start()
    try:
        for record in records:
            origin = _header(record, "dlq_topic")
            if not origin:
                continue
            headers = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
            headers.append(("redriven_from", f"{dead_letter_topic(group)}:{record.offset}".encode()))
            await producer.send_and_wait(origin, record.value, key=record.key, headers=headers)
        if records:
            await consumer.commit({TopicPartition(dead_letter_topic(group), 0): records[-1].offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return len(records)
