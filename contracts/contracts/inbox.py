"""The inbox: integration events from Kafka applied exactly once in effect.

Kafka delivers at least once. A service applies each record in one store transaction
together with a tracking record (group, topic, partition -> offset), so the same record
delivered again is recognised by its offset, and together with a receipt of the
CloudEvent's (source, id), so the same event published again by a relay at a new offset
is recognised too. What can never be applied goes to the group's dead-letter topic with
the reason and the original headers, and the consumer goes on with the next record.

Each record is handled in a span continuing the trace its `traceparent` header names, and
written to the service's processing log (`contracts.processing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from eventsourcing.persistence import InterfaceError, OperationalError

from contracts import kafka, tracing
from contracts.envelope import CloudEvent, PoisonRecord, from_record
from contracts.events import event_class
from contracts.processing import ProcessingLog, Record
from contracts.service import Outcome
from contracts.topics import dead_letter_topic

log = logging.getLogger(__name__)

# The store or the broker being away is no reason to give up on a record.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, KafkaError, TimeoutError)


class Target(Protocol):
    """What an inbox applies records to: a service's store (see `ServiceApplication`)."""

    group: str

    def position(self, topic: str, partition: int) -> int | None:
        """The last offset applied from this topic-partition, if any."""

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        """Applies one event atomically with its tracking; safe to call twice."""


class Inbox:
    """Consumes topics for one consumer group and applies each record to a target."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topics: Sequence[str],
        target: Target,
        producer: AIOKafkaProducer,
        retry_delays: Sequence[float] = (0.1, 0.5, 2.0),
        processing_log: ProcessingLog | None = None,
        system: str | None = None,
        commit_seconds: float = 1.0,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = tuple(topics)
        self.target = target
        self.group = target.group
        # The event classes the target applies, when it says: any other is ignored here.
        self.consumes: tuple[type, ...] | None = getattr(target, "consumes", None)
        self.producer = producer  # for dead letters
        self.retry_delays = tuple(retry_delays)
        self.commit_seconds = commit_seconds  # at most this long between commits while busy
        self.assigned = asyncio.Event()  # set once the group gave this member partitions
        self.applied = 0
        self.processing_log = processing_log
        self.system = system or f"tweespoor-{self.group}"

    async def run(self) -> None:
        consumer = kafka.consumer(self.bootstrap_servers, self.group)
        offsets = _Offsets(consumer, self.commit_seconds)
        consumer.subscribe(self.topics, listener=_SeekToStore(self, consumer, offsets))
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    for record in records:
                        await self.handle(record)
                    offsets.done(tp, records[-1].offset + 1)
                await offsets.commit(when_due=bool(batches))  # all of it once nothing came
        finally:
            with contextlib.suppress(Exception):  # best effort: the store's tracking holds
                await asyncio.wait_for(offsets.commit(), 5)
            await consumer.stop()

    async def handle(self, record: Any) -> Outcome | None:
        """Applies one record in a span that continues the record's trace (what the target
        records meanwhile is stamped with it); poison goes to the dead-letter topic. Never
        raises."""
        headers = list(record.headers or ())
        traceparent = next((v.decode("latin-1") for k, v in headers if k == tracing.HEADER), None)
        span, started = tracing.continue_from(traceparent), tracing.now()
        with tracing.within(span):
            outcome = await self._handle(record, headers)
        if outcome is Outcome.APPLIED or outcome is None:  # processed, or given up on
            await self._log(record, span, started, outcome)
        return outcome

    async def _log(self, record: Any, span: tracing.Span, started: str, outcome: Outcome | None) -> None:
        """One processing-log record per record processed (or given up on); the subject
        is the record's key, the pseudonymous trajectory id."""
        if self.processing_log is None:
            return
        kind = next((v.decode("latin-1") for k, v in record.headers or () if k == "ce_type"), "")
        kind = kind if event_class(kind) is not None else "unreadable"  # a poison header may say anything
        entry = Record(trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
                       activity_id=f"{self.system}:consume {kind}", service=self.system,
                       status="error" if outcome is None else "ok", subject_type="trajectory",
                       subject_id=_subject(record.key), started_at=started, ended_at=tracing.now())
        try:
            await asyncio.to_thread(self.processing_log.record, entry)
        except Exception as error:  # the effect is recorded; a missing log line is no reason to redo it
            log.warning("processing_log_failed", extra={"group": self.group, "error": type(error).__name__})

    async def _handle(self, record: Any, headers: list[tuple[str, bytes]]) -> Outcome | None:
        try:
            cloud_event = from_record(record.key, record.value, headers)
        except PoisonRecord as poison:
            await self.dead_letter(record, poison.reason)
            return None
        if self.consumes is not None and not isinstance(cloud_event.data, self.consumes):
            return Outcome.IGNORED  # what the target would answer, without a trip to its store
        failures = 0
        while True:
            try:
                outcome = await asyncio.to_thread(
                    self.target.apply, cloud_event, record.topic, record.partition, record.offset
                )
            except TRANSIENT as error:
                log.warning("inbox_store_unavailable", extra={"group": self.group, "error": type(error).__name__})
                await asyncio.sleep(1.0)
                continue
            except Exception as error:  # the handler failed: retry, then dead-letter
                if failures == len(self.retry_delays):
                    await self.dead_letter(
                        record, f"handler failed {failures + 1} times: {type(error).__name__}: {error}"
                    )
                    return None
                await asyncio.sleep(self.retry_delays[failures])
                failures += 1
                continue
            if outcome is Outcome.APPLIED:
                self.applied += 1
            log.debug("inbox_record", extra={"group": self.group, "outcome": outcome.value,
                                             "type": cloud_event.attributes.type})
            return outcome

    async def dead_letter(self, record: Any, reason: str) -> None:
        headers = list(record.headers or ()) + [
            ("dlq_reason", reason[:500].encode()),
            ("dlq_group", self.group.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
        ]
        while True:
            try:
                await self.producer.send_and_wait(
                    dead_letter_topic(self.group), record.value, key=record.key, headers=headers
                )
                break
            except KafkaError:
                await asyncio.sleep(1.0)
        log.warning("inbox_dead_lettered", extra={"group": self.group, "topic": record.topic,
                                                  "offset": record.offset, "reason": reason[:200]})


class _Offsets:
    """What was processed and not yet committed to the group. Committing after every
    batch cost a broker round trip per record at a trickle; the store's tracking says what
    was applied, so a late commit (or one a crash loses) only means records read again
    and recognised by their offset, or ignored again."""

    def __init__(self, consumer: AIOKafkaConsumer, every: float) -> None:
        self.consumer = consumer
        self.every = every
        self.pending: dict[TopicPartition, int] = {}
        self.last = time.monotonic()

    def done(self, tp: TopicPartition, next_offset: int) -> None:
        self.pending[tp] = next_offset

    async def commit(self, partitions: Any = None, *, when_due: bool = False) -> None:
        """Commits the pending offsets (of `partitions` only, if given); with `when_due`,
        only once `every` seconds passed since the last commit."""
        if when_due and time.monotonic() - self.last < self.every:
            return
        wanted = self.pending if partitions is None else set(partitions)
        offsets = {tp: self.pending.pop(tp) for tp in list(self.pending) if tp in wanted}
        if offsets:
            self.last = time.monotonic()
            await _commit(self.consumer, offsets)


class _SeekToStore(ConsumerRebalanceListener):
    """On assignment, resume after the store's tracking when it is ahead of the group's
    committed offset (a crash after the store commit and before the Kafka commit). On
    revocation, commit what was processed of the partitions going, while they are ours."""

    def __init__(self, inbox: Inbox, consumer: AIOKafkaConsumer, offsets: _Offsets) -> None:
        self.inbox = inbox
        self.consumer = consumer
        self.offsets = offsets

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.offsets.commit(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in assigned:
            stored = await asyncio.to_thread(self.inbox.target.position, tp.topic, tp.partition)
            committed = await self.consumer.committed(tp)
            if stored is not None and (committed is None or committed <= stored):
                self.consumer.seek(tp, stored + 1)
        if assigned:
            self.inbox.assigned.set()


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as error:  # the store's tracking still holds
        log.warning("inbox_commit_failed", extra={"error": type(error).__name__})


def _subject(key: bytes | None) -> str | None:
    """The record key if it is a UUID (a trajectory id), else nothing: a malformed key
    might carry anything, and the log takes no chances."""
    try:
        return str(uuid.UUID((key or b"").decode()))
    except (UnicodeDecodeError, ValueError):
        return None
