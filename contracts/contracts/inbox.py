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
from aiokafka.structs import OffsetAndMetadata
from eventsourcing.persistence import InterfaceError, OperationalError

from contracts import deadletters, kafka, tracing
from contracts.envelope import CloudEvent, PoisonRecord, from_record
from contracts.events import event_class
from contracts.health import Readiness, backoff
from contracts.incarnation import topic_ids, tracked
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

    def incarnation(self, topic: str, topic_id: str) -> int:
        """The number of this incarnation of `topic` among those the target has read
        (`contracts.incarnation`); positions on it are kept under `tracked(topic, n)`."""


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
        incarnation_seconds: float = 5.0,
        retry_topic: str | None = None,
        readiness: Readiness | None = None,
        security: kafka.KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security  # the service's principal (`contracts.kafka`); the environment's when None
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
        self.incarnations = _Incarnations(target)
        # Partitions sought to the store's position: aiokafka fetches from an assigned
        # partition before its listener has run, and what it got then is read again.
        self.resumed: set[TopicPartition] = set()
        self.incarnation_seconds = incarnation_seconds  # how often a topic's id is looked at
        # The group's retry topic, where a re-drive puts its dead letters (contracts.deadletters):
        # read like the others; a record from it that fails again keeps its origin and attempts.
        self.retry_topic = retry_topic
        if retry_topic and retry_topic not in self.topics:
            self.topics += (retry_topic,)
        self.readiness = readiness  # told when this inbox cannot make progress, and when it can
        self.stalled: str | None = None  # why this inbox cannot make progress, while it cannot
        self.letter_limit: int | None = None  # the dead-letter topic's max.message.bytes, once known

    async def run(self) -> None:
        consumer = kafka.consumer(self.bootstrap_servers, self.group, security=self.security)
        offsets = _Offsets(consumer, self.commit_seconds, self.incarnations)
        consumer.subscribe(self.topics, listener=_SeekToStore(self, consumer, offsets))
        await consumer.start()
        looked = time.monotonic()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for tp, records in batches.items():
                    handled = None
                    for record in records:
                        if tp not in self.resumed:
                            self._again(consumer, tp, record.offset)
                            break
                        await self.handle(record)
                        handled = record.offset
                    if handled is not None:
                        offsets.done(tp, handled + 1)
                await offsets.commit(when_due=bool(batches))  # all of it once nothing came
                if time.monotonic() - looked >= self.incarnation_seconds:
                    looked = time.monotonic()
                    await self._follow_incarnations(consumer, offsets)
        finally:
            with contextlib.suppress(Exception):  # best effort: the store's tracking holds
                await asyncio.wait_for(offsets.commit(), 5)
            await consumer.stop()

    def _again(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        """A record of a partition not (or no longer) sought to the store's position: it
        came before the assignment's listener was done, or after the partition was taken
        away. Never dropped: while the partition is ours it is read again from here (the
        listener's own seek, if later, still wins); once it is not, its owner reads it."""
        if tp in consumer.assignment():
            consumer.seek(tp, offset)

    async def _follow_incarnations(self, consumer: AIOKafkaConsumer, offsets: _Offsets) -> None:
        """A topic deleted and created again under this consumer is read again from its
        start, under positions of its own: nothing of it is skipped."""
        try:
            changed = await self.incarnations.look(consumer, self.topics)
        except TRANSIENT as error:  # looked at again in a moment
            log.warning("inbox_incarnation_unknown", extra={"group": self.group, "error": type(error).__name__})
            return
        if changed or self.incarnations.missing:  # the client notices a topic's return sooner
            consumer._client.force_metadata_update()
        for topic in changed:
            offsets.forget(topic)  # read from the old incarnation: no position of the new one
            await self.resume(consumer, [tp for tp in consumer.assignment() if tp.topic == topic])

    async def resume(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Seeks each partition to after the store's position on this incarnation of its
        topic, or to the group's commit when that is further (records the target ignored
        leave no tracking) and was made on this incarnation; else to its start."""
        committed = await consumer._coordinator.fetch_committed_offsets(partitions)
        for tp in partitions:
            stored = await asyncio.to_thread(self.target.position, self.incarnations.tracked(tp.topic), tp.partition)
            commit, topic_id = committed.get(tp), self.incarnations.ids.get(tp.topic)
            trusted = commit.offset if commit is not None and topic_id and commit.metadata == topic_id else -1
            start = max(-1 if stored is None else stored + 1, trusted)
            if start < 0:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)

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
        failures = waits = 0
        while True:
            try:
                outcome = await asyncio.to_thread(self.target.apply, cloud_event,
                                                  self.incarnations.tracked(record.topic),
                                                  record.partition, record.offset)
            except TRANSIENT as error:  # waited for, saying so, and not ready meanwhile
                waits += 1
                delay = backoff(waits)
                self._stall(f"store unavailable ({type(error).__name__})")
                log.error("inbox_store_unavailable", extra={"group": self.group, "error": type(error).__name__,
                                                            "attempt": waits, "retry_in": delay})
                await asyncio.sleep(delay)
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
            self._progressing()
            if outcome is Outcome.APPLIED:
                self.applied += 1
            log.debug("inbox_record", extra={"group": self.group, "outcome": outcome.value,
                                             "type": cloud_event.attributes.type})
            return outcome

    async def dead_letter(self, record: Any, reason: str) -> None:
        """Puts `record` on the group's dead-letter topic; never fails for size. A letter
        larger than that topic takes (a record near its own topic's limit has no room for
        the `dlq_*` headers) is bounded (`contracts.deadletters`), and so is one the
        producer refused for good, then sent by a producer of its own. A broker that is
        away is waited for, with backoff, an error log each time and the inbox stalled."""
        topic = dead_letter_topic(self.group)
        retried = self.retry_topic is not None and record.topic == self.retry_topic
        letter = deadletters.letter(record, reason, self.group, retried=retried)
        if self.letter_limit is None:  # looked up once; until then, the broker's default
            self.letter_limit = await deadletters.max_message_bytes(self.bootstrap_servers, topic,
                                                                   security=self.security)
        if letter.size() > deadletters.limit_for(self.letter_limit, self.producer):
            letter = letter.bounded()
        alone, attempt = False, 0
        while True:
            try:
                if alone:
                    await deadletters.send_alone(self.bootstrap_servers, topic, letter, security=self.security)
                else:
                    await self._send_letter(topic, letter)
                break
            except (KafkaError, OSError, TimeoutError) as error:
                if not alone and not deadletters.transient(error):
                    log.error("inbox_dead_letter_refused", extra={
                        "group": self.group, "topic": record.topic, "offset": record.offset,
                        "error": type(error).__name__, "action": "sending it bounded, by a producer of its own"})
                    letter, alone = letter.bounded(), True
                    continue
                attempt += 1
                delay = backoff(attempt)
                self._stall(f"dead-letter topic unavailable ({type(error).__name__})")
                log.error("inbox_dead_letter_failed", extra={"group": self.group, "error": type(error).__name__,
                                                             "attempt": attempt, "retry_in": delay})
                await asyncio.sleep(delay)
        self._progressing()
        log.warning("inbox_dead_lettered", extra={"group": self.group, "topic": record.topic,
                                                  "offset": record.offset, "reason": reason[:200],
                                                  "truncated": letter.truncated})

    async def _send_letter(self, topic: str, letter: deadletters.Letter) -> None:
        """Sends with the shared producer and waits, saying so every 30 s while it waits
        (an idempotent producer retries by itself; sending again would only duplicate)."""
        sent = await self.producer.send(topic, letter.value, key=letter.key, headers=letter.record_headers())
        waited = 0
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(sent), 30)
                return
            except TimeoutError:
                waited += 30
                self._stall("dead-letter topic unavailable (no acknowledgement)")
                log.error("inbox_dead_letter_waiting", extra={"group": self.group, "waited_s": waited})

    def _stall(self, reason: str) -> None:
        """Marks this inbox as unable to make progress; its process is not ready meanwhile."""
        self.stalled = reason
        if self.readiness is not None:
            self.readiness.stalled(f"inbox {self.group}", reason)

    def _progressing(self) -> None:
        if self.stalled is not None:
            log.warning("inbox_progressing_again", extra={"group": self.group, "was": self.stalled})
            self.stalled = None
            if self.readiness is not None:
                self.readiness.progressing(f"inbox {self.group}")


class _Offsets:
    """What was processed and not yet committed to the group. Committing after every
    batch cost a broker round trip per record at a trickle; the store's tracking says what
    was applied, so a late commit (or one a crash loses) only means records read again
    and recognised by their offset, or ignored again. Each commit carries the topic's id,
    so a commit is only trusted on the incarnation of the topic it was made on."""

    def __init__(self, consumer: AIOKafkaConsumer, every: float, incarnations: _Incarnations) -> None:
        self.consumer = consumer
        self.every = every
        self.incarnations = incarnations
        self.pending: dict[TopicPartition, int] = {}
        self.last = time.monotonic()

    def done(self, tp: TopicPartition, next_offset: int) -> None:
        self.pending[tp] = next_offset

    def forget(self, topic: str) -> None:
        for tp in [tp for tp in self.pending if tp.topic == topic]:
            del self.pending[tp]

    async def commit(self, partitions: Any = None, *, when_due: bool = False) -> None:
        """Commits the pending offsets (of `partitions` only, if given); with `when_due`,
        only once `every` seconds passed since the last commit."""
        if when_due and time.monotonic() - self.last < self.every:
            return
        wanted = self.pending if partitions is None else set(partitions)
        offsets = {tp: OffsetAndMetadata(self.pending.pop(tp), self.incarnations.ids.get(tp.topic, ""))
                   for tp in list(self.pending) if tp in wanted}
        if offsets:
            self.last = time.monotonic()
            await _commit(self.consumer, offsets)


class _Incarnations:
    """The incarnation of each consumed topic this inbox reads (`contracts.incarnation`),
    and the name the target keeps its positions on it under."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.ids: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.missing: set[str] = set()

    def tracked(self, topic: str) -> str:
        return self.names.get(topic, topic)

    async def look(self, consumer: AIOKafkaConsumer, topics: Any) -> list[str]:
        """Looks up the topics' ids; returns those whose incarnation changed since the
        last look (a topic not there at the moment keeps what it had)."""
        found = await topic_ids(consumer._client, topics)
        missing = set(topics) - set(found)
        if missing - self.missing:
            log.warning("inbox_topic_missing", extra={"group": self.target.group, "topics": sorted(missing)})
        self.missing = missing
        changed = []
        for topic, topic_id in sorted(found.items()):
            if self.ids.get(topic) == topic_id:
                continue
            ordinal = await asyncio.to_thread(self.target.incarnation, topic, topic_id)
            if topic in self.ids:
                changed.append(topic)
                log.warning("inbox_topic_recreated", extra={
                    "group": self.target.group, "topic": topic, "previous_id": self.ids[topic],
                    "topic_id": topic_id, "incarnation": ordinal, "action": "reading it from its start"})
            self.ids[topic], self.names[topic] = topic_id, tracked(topic, ordinal)
        return changed


class _SeekToStore(ConsumerRebalanceListener):
    """On assignment, resume where the store's tracking says, on the topic's incarnation
    as it is now (`Inbox.resume`). On revocation, commit what was processed of the
    partitions going, while they are ours."""

    def __init__(self, inbox: Inbox, consumer: AIOKafkaConsumer, offsets: _Offsets) -> None:
        self.inbox = inbox
        self.consumer = consumer
        self.offsets = offsets

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.inbox.resumed.difference_update(revoked)
        await self.offsets.commit(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if not assigned:
            return
        while True:  # until the store and the broker answer: nothing is read meanwhile
            try:
                changed = await self.inbox.incarnations.look(self.consumer, sorted({tp.topic for tp in assigned}))
                for topic in changed:
                    self.offsets.forget(topic)
                await self.inbox.resume(self.consumer, sorted(assigned))
                self.inbox.resumed.update(assigned)
                self.inbox._progressing()
                break
            except Exception as error:  # the store or broker away (or a bug): said, and tried again
                log.error("inbox_cannot_resume", extra={"group": self.inbox.group, "error": type(error).__name__},
                          exc_info=not isinstance(error, TRANSIENT))
                self.inbox._stall(f"cannot resume ({type(error).__name__})")
                await asyncio.sleep(1.0)
        self.inbox.assigned.set()


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
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
