"""Dead letters: writing them so that writing never fails for size, looking at them, and
re-driving them to their own group once their cause is fixed.

A dead letter is a copy of the record (key, value, headers) with `dlq_*` headers: the
reason, the group, where the record came from (`dlq_topic`, `dlq_partition`,
`dlq_offset`: always the original event topic's position, also for a record that failed
again after a re-drive) and how often it was re-driven (`dlq_attempts`). Kafka's
`max.message.bytes` bounds a record with its headers, so a record at or near its topic's
limit has no room for them: such a letter is *bounded* instead — the original's position
and headers (each cut short), an excerpt of its value (`dlq_excerpt`), its size
(`dlq_size`) and `dlq_truncated: true`, and no value. The original stays on its topic.

A re-drive sends a group's dead letters to the group's own retry topic, which no other
group reads, with `dlq_attempts` one higher (a bounded letter's original is read back from
its topic), and then records how far it got in the dead-letter topic under its own
consumer group, so running it twice re-drives nothing twice. A letter that failed again
after `max_attempts` re-drives is refused unless forced; a refused letter can be forced
later by its offset. The inbox applies a retried event like any other: one applied
before is recognised by its receipt, so it takes effect once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from contracts import kafka
from contracts.topics import BROKER_MAX_MESSAGE_BYTES, RETRY_MAX_MESSAGE_BYTES, dead_letter_topic, retry_topic

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # re-drives of one letter before a re-drive refuses it unless forced
EXCERPT_BYTES = 4096  # of the value, in a bounded letter
HEADER_BYTES = 1024  # of each original header's value, in a bounded letter
HEADERS_BYTES = 16384  # of all original headers together, in a bounded letter
KEY_BYTES = 1024  # a longer key is left out of a bounded letter
PRODUCER_MAX_REQUEST = 1048576  # aiokafka's default `max_request_size`


@dataclass(frozen=True)
class Letter:
    """A dead letter as it goes on the dead-letter topic: the record's own key, value and
    headers (no `dlq_*` ones) and the `dlq_*` headers about it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    about: list[tuple[str, bytes]]
    truncated: bool = False

    def record_headers(self) -> list[tuple[str, bytes]]:
        return self.headers + self.about

    def size(self) -> int:
        """An upper bound of the record batch this letter makes (what the broker compares
        with `max.message.bytes`, and the producer with its `max_request_size`)."""
        return DefaultRecordBatchBuilder.estimate_size_in_bytes(self.key, self.value, self.record_headers())

    def bounded(self) -> Letter:
        """The letter without the value, with the original headers cut short: a few KB,
        whatever the record's size."""
        if self.truncated:
            return self
        kept, total = [], 0
        for name, value in self.headers:
            value = (value or b"")[:HEADER_BYTES]
            total += len(name) + len(value)
            if total > HEADERS_BYTES:
                break
            kept.append((name, value))
        about = self.about + [("dlq_truncated", b"true"),
                              ("dlq_size", str(len(self.value or b"")).encode()),
                              ("dlq_excerpt", (self.value or b"")[:EXCERPT_BYTES])]
        key = self.key if self.key is None or len(self.key) <= KEY_BYTES else None
        return Letter(key, None, kept, about, truncated=True)


def letter(record: Any, reason: str, group: str, *, retried: bool) -> Letter:
    """The dead letter of `record`. For a record read from the group's retry topic
    (`retried`), the origin and the attempts it carries are kept; on any other record a
    `dlq_*` header is not ours and is dropped."""
    own = [(k, v) for k, v in record.headers or () if not k.startswith("dlq_")]
    topic, partition, offset = record.topic, str(record.partition), str(record.offset)
    attempts = "0"
    if retried:
        topic = _header(record, "dlq_topic") or topic
        partition = _header(record, "dlq_partition") or partition
        offset = _header(record, "dlq_offset") or offset
        attempts = _header(record, "dlq_attempts") or "0"
    about = [("dlq_reason", reason[:500].encode()), ("dlq_group", group.encode()),
             ("dlq_topic", topic.encode()), ("dlq_partition", partition.encode()),
             ("dlq_offset", offset.encode()), ("dlq_attempts", attempts.encode())]
    return Letter(record.key, record.value, own, about)


def transient(error: BaseException) -> bool:
    """Whether a failed send may succeed as it is when tried again (the broker away or
    busy), rather than being refused for what it is (too large, a producer whose state
    for the partition broke)."""
    return isinstance(error, (KafkaConnectionError, KafkaTimeoutError, RequestTimedOutError,
                              NodeNotReadyError, TimeoutError)) or bool(getattr(error, "retriable", False))


async def max_message_bytes(bootstrap: str, topic: str, *, security: kafka.KafkaSecurity | None = None) -> int | None:
    """The topic's `max.message.bytes` as the broker has it, or None if it cannot say now."""
    admin = kafka.admin(bootstrap, "tweespoor-dlq-limit", security=security)
    try:
        await admin.start()
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})])
        for resource in response.resources:
            error_code, _, _, _, entries = resource
            for name, value, *_ in entries if error_code == 0 else ():
                if name == "max.message.bytes":
                    return int(value)
        return None
    except (KafkaError, OSError, ValueError) as error:
        log.warning("dlq_limit_unknown", extra={"topic": topic, "error": type(error).__name__})
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def limit_for(topic_limit: int | None, producer: Any) -> int:
    """The largest letter the dead-letter topic and the producer both take."""
    return min(topic_limit or BROKER_MAX_MESSAGE_BYTES,
               int(getattr(producer, "_max_request_size", PRODUCER_MAX_REQUEST)))


async def send_alone(bootstrap: str, topic: str, letter: Letter, *,
                     security: kafka.KafkaSecurity | None = None) -> None:
    """Sends one letter with a producer of its own, not idempotent: for when the shared
    producer refused it (an idempotent producer whose send the broker refused keeps a
    sequence number the broker never saw, and every later send to that partition fails)."""
    producer = kafka.plain_producer(bootstrap, "tweespoor-dlq", security=security, request_timeout_ms=10_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, letter.value, key=letter.key, headers=letter.record_headers())
    finally:
        await producer.stop()


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    topic: str
    partition: int
    original_offset: int
    reason: str
    type: str | None
    attempts: int = 0
    truncated: bool = False


@dataclass
class Redrive:
    """What a re-drive did, by dead-letter offset."""

    redriven: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # failed after max_attempts re-drives
    skipped: list[int] = field(default_factory=list)  # re-driven before (the same failure twice)
    missing: list[int] = field(default_factory=list)  # bounded, and the original is gone


def _header(record: Any, name: str) -> str | None:
    return next((v.decode(errors="replace") for k, v in record.headers or () if k == name), None)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


async def _read(bootstrap: str, group: str, *, from_committed: bool,
                security: kafka.KafkaSecurity | None) -> tuple[AIOKafkaConsumer, list[Any]]:
    topic = dead_letter_topic(group)
    consumer = kafka.reader(bootstrap, security=security, group_id=f"{group}-redrive", auto_offset_reset="earliest")
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


def _dead_letter(r: Any) -> DeadLetter:
    return DeadLetter(r.offset, _header(r, "dlq_topic") or "", _int(_header(r, "dlq_partition"), -1),
                      _int(_header(r, "dlq_offset"), -1), _header(r, "dlq_reason") or "",
                      _header(r, "ce_type"), _int(_header(r, "dlq_attempts"), 0),
                      _header(r, "dlq_truncated") == "true")


async def list_dead_letters(bootstrap: str, group: str, *,
                            security: kafka.KafkaSecurity | None = None) -> list[DeadLetter]:
    consumer, records = await _read(bootstrap, group, from_committed=False, security=security)
    await consumer.stop()
    return [_dead_letter(r) for r in records]


async def _original(bootstrap: str, topic: str, partition: int, offset: int,
                    security: kafka.KafkaSecurity | None) -> Any | None:
    """The record at `offset` of `topic`/`partition`, if it is still there."""
    consumer = kafka.reader(bootstrap, security=security, max_partition_fetch_bytes=RETRY_MAX_MESSAGE_BYTES)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        start, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
        if not start <= offset < end:
            return None
        consumer.seek(tp, offset)
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if record.offset == offset:
                    return record
                if record.offset > offset:
                    return None
        return None
    finally:
        await consumer.stop()


async def _redriven(bootstrap: str, group: str,
                    security: kafka.KafkaSecurity | None) -> set[tuple[str | None, ...]]:
    """What is on the group's retry topic already: (origin topic, partition, offset,
    attempt) of each record. The same failure dead-lettered twice (a record read again
    after a rebalance) is re-driven once, and a re-drive that stopped between sending and
    recording its position sends nothing again."""
    consumer = kafka.reader(bootstrap, security=security, max_partition_fetch_bytes=RETRY_MAX_MESSAGE_BYTES)
    await consumer.start()
    try:
        ends = await kafka.read_from_start(consumer, [retry_topic(group)])
        done: set[tuple[str | None, ...]] = set()
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                for r in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    done.add(tuple(_header(r, n) for n in ("dlq_topic", "dlq_partition", "dlq_offset", "dlq_attempts")))
        return done
    finally:
        await consumer.stop()


async def redrive(bootstrap: str, group: str, *, max_attempts: int = MAX_ATTEMPTS, force: bool = False,
                  offsets: Sequence[int] | None = None, security: kafka.KafkaSecurity | None = None) -> Redrive:
    """Sends the group's dead letters not re-driven yet to the group's retry topic.

    A letter re-driven `max_attempts` times already is refused unless `force`. With
    `offsets`, exactly those letters are re-driven (a letter refused before, say), and how
    far re-drives got is left as it was.
    """
    consumer, records = await _read(bootstrap, group, from_committed=offsets is None, security=security)
    if offsets is not None:
        records = [r for r in records if r.offset in set(offsets)]
    producer = kafka.producer(bootstrap, f"{group}-redrive", security=security, linger_ms=0,
                              max_request_size=RETRY_MAX_MESSAGE_BYTES)
    await producer.start()
    result = Redrive()
    try:
        done = await _redriven(bootstrap, group, security) if records else set()
        for record in records:
            letter = _dead_letter(record)
            if letter.attempts >= max_attempts and not force:
                result.refused.append(record.offset)
                continue
            this = (letter.topic, str(letter.partition), str(letter.original_offset), str(letter.attempts + 1))
            if this in done:
                result.skipped.append(record.offset)
                continue
            key, value, headers = record.key, record.value, record.headers or ()
            if letter.truncated:
                original = await _original(bootstrap, letter.topic, letter.partition, letter.original_offset, security)
                if original is None:
                    result.missing.append(record.offset)
                    continue
                key, value, headers = original.key, original.value, original.headers or ()
            headers = [(k, v) for k, v in headers if not k.startswith("dlq_") and k != "redriven_from"] + [
                ("dlq_topic", letter.topic.encode()), ("dlq_partition", str(letter.partition).encode()),
                ("dlq_offset", str(letter.original_offset).encode()),
                ("dlq_attempts", str(letter.attempts + 1).encode()),
                ("redriven_from", f"{dead_letter_topic(group)}:{record.offset}".encode()),
            ]
            await producer.send_and_wait(retry_topic(group), value, key=key, headers=headers)
            done.add(this)
            result.redriven.append(record.offset)
        if records and offsets is None:
            await consumer.commit({TopicPartition(dead_letter_topic(group), 0): records[-1].offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    if result.refused:
        log.warning("dlq_redrive_refused", extra={"group": group, "offsets": result.refused,
                                                  "max_attempts": max_attempts})
    return result
