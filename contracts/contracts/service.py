"""The application base every event-sourced service builds on, and its store settings.

A service's store holds its aggregates' events (the notification log is its outbox) and
its tracking records: the relay's published position and, per consumed topic-partition,
the last applied offset. That needs eventsourcing's process recorder, which records
tracking in the same transaction as new events.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import random
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    EventStore, IntegrityError, JSONTranscoder, Mapper, PersistenceError, Tracking, Transcoding,
)
from eventsourcing.projection import EventSourcedProjection

from contracts.actors import StampedMapper
from contracts.audit import AuditIndex
from contracts.chain import (
    SEALED, Anchor, ChainedMapper, ChainReport, IntegrityViolation, checked, seal_key, unwrap, verify, walk,
)
from contracts.commands import retry_on_conflict
from contracts.envelope import Attributes, CloudEvent
from contracts.events import Event
from contracts.incarnation import ordinal_in_tracking
from contracts.wakeup import Wakeup

log = logging.getLogger(__name__)


class ServiceMapper(ChainedMapper, StampedMapper):
    """Chains each stored event to its predecessor over its stamped state."""


RECEIPT_NAMESPACE = uuid.UUID("0b6f9a53-2a8e-4d5e-8d1c-3f0e6c1d2b44")
STARTUP_ATTEMPTS = 10  # tries to create the store's tables beside another starting process


def store_env(database_url: str) -> dict[str, str]:
    """eventsourcing's environment for a store URL.

    `sqlite:///path/file.db` (the embedded default), `postgresql://user:pw@host:port/db`,
    or `memory:` for unit tests. A URL with a query string is refused: eventsourcing's
    PostgreSQL store takes only the database, host, port, user and password, so
    `?sslmode=…` would silently not apply to it. TLS to PostgreSQL is set in libpq's own
    environment instead (PGSSLMODE, PGSSLROOTCERT), which every connection reads.
    """
    if database_url == "memory:":
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    parts = urlsplit(database_url)
    if parts.query:  # the URL is not echoed: it may hold a password
        raise ValueError(
            "a database URL with a query string (?…) is not supported: the event store would ignore "
            "its parameters. For TLS to PostgreSQL set libpq's environment instead, e.g. "
            "PGSSLMODE=verify-full and PGSSLROOTCERT=/path/to/ca.pem, and leave the URL without '?'"
        )
    if parts.scheme == "sqlite":
        path = unquote(database_url.removeprefix("sqlite:///"))  # sqlite:////abs or :///rel
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "10"}
    if parts.scheme in ("postgresql", "postgres"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/"),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "5",
        }
    raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"

    def encode(self, obj: dt.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.date:
        return dt.date.fromisoformat(data)


class Outcome(enum.Enum):
    APPLIED = "applied"
    IGNORED = "ignored"  # a known event this service has no use for
    SEEN_OFFSET = "seen-offset"  # Kafka delivered the same record again
    SEEN_EVENT = "seen-event"  # the same CloudEvent again, at another offset


def tracking_name(group: str, topic: str, partition: int) -> str:
    return f"kafka:{group}:{topic}:{partition}"


class Receipt(Aggregate):
    """That this service applied one integration event; its id derives from (source, id)."""

    @staticmethod
    def create_id(source: str, event_id: str, type: str) -> uuid.UUID:
        return uuid.uuid5(RECEIPT_NAMESPACE, f"{source}|{event_id}")

    @event("Received")
    def __init__(self, source: str, event_id: str, type: str) -> None:
        self.source = source
        self.event_id = event_id
        self.type = type


def project(aggregate: Any, domain_events: Any) -> Any:
    """eventsourcing's `project_aggregate` without its `assert isinstance(event,
    CanMutateProtocol)`: an isinstance against a runtime-checkable Protocol walks the
    protocol's members each time, some 30 µs an event, which made loading a trajectory of
    thirty events cost a millisecond. Our events all come from Aggregate classes and can
    mutate; one that cannot still fails, with an AttributeError."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


def violated(violation: IntegrityViolation, service: str) -> IntegrityViolation:
    """Logs a broken chain once, where it is found: the service, the stream, the version
    and why (never the content), and returns it to be raised."""
    if violation.service is None:
        violation.service = service
        log.error("integrity_violation", extra={"service": service, "stream": violation.stream,
                                                "version": violation.version, "reason": violation.reason})
    return violation


class ChainedEventStore(EventStore):  # type: ignore[type-arg]
    """eventsourcing's event store, verifying every stream it reads against its hash chain
    (from its first event, or from the event a sealed snapshot was taken at) and against
    the head a signed checkpoint holds: nothing tampered is handed to an aggregate.

    This is the one place every load passes (the repository, `app.events.get`), and it
    reads the stored events anyway: the check costs a SHA-256 per event."""

    service: str = ""
    anchors: Any = None  # something with `.anchor(originator_id) -> Anchor | None`

    def anchor(self, originator_id: Any) -> Anchor | None:
        return self.anchors.anchor(originator_id) if self.anchors is not None else None

    def get(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
            desc: bool = False, limit: int | None = None) -> Any:
        if desc or limit is not None:  # a slice: each event checked, and linked to its neighbours
            stored = self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
            ordered = sorted(stored, key=lambda s: s.originator_version)
            after = self._before(originator_id, ordered[0].originator_version) if ordered else None
            self.verified(originator_id, ordered, after=after, complete=False)
            return iter([self.mapper.to_domain_event(s) for s in stored])
        return iter(self.load(originator_id, gt=gt, lte=lte))

    def load(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
             at: bytes | None = None) -> list[Any]:
        """The stream's domain events after `gt` up to `lte`, verified; `at` is the own hash
        the event at `gt` must have (from a sealed snapshot)."""
        if gt:
            stored = self.recorder.select_events(originator_id, gt=gt - 1, lte=lte)
            first = stored[0] if stored and stored[0].originator_version == gt else None
            if first is None:
                raise violated(IntegrityViolation(originator_id, gt, f"version {gt} is missing"), self.service)
            try:
                _, own, _ = checked(first)
            except IntegrityViolation as violation:
                raise violated(violation, self.service) from None
            if at is not None and own != at:
                raise violated(IntegrityViolation(originator_id, gt, "differs from the event its snapshot was "
                                                  "taken at"), self.service)
            anchor = self.anchor(originator_id)
            if anchor is not None and anchor.version == gt and own != anchor.head.encode():
                raise violated(IntegrityViolation(originator_id, gt, "differs from the head a signed checkpoint "
                                                  "holds"), self.service)
            after: tuple[int, bytes] | None = (gt, own)
            stored = stored[1:]
        else:
            stored, after = self.recorder.select_events(originator_id, lte=lte), None
        self.verified(originator_id, stored, after=after, complete=lte is None)
        return [self.mapper.to_domain_event(s) for s in stored]

    def verified(self, originator_id: Any, stored: list[Any], *, after: tuple[int, bytes] | None,
                 complete: bool) -> None:
        anchor = self.anchor(originator_id)
        if not stored and after is None and not complete:
            return
        try:
            for _ in walk(stored, originator_id=originator_id, after=after, anchor=anchor, complete=complete):
                pass
        except IntegrityViolation as violation:
            raise violated(violation, self.service) from None

    def _before(self, originator_id: Any, version: int) -> tuple[int, bytes] | None:
        if version <= 1:
            return None
        found = self.recorder.select_events(originator_id, gt=version - 2, lte=version - 1)
        if not found:
            raise violated(IntegrityViolation(originator_id, version, f"version {version - 1} is missing"),
                           self.service)
        return version - 1, unwrap(found[0])[1]


class ServiceRepository(Repository):  # type: ignore[type-arg]
    """Loads aggregates with `project` unless told otherwise, every one verified: its
    events by the chained event store, a snapshot by its seal (one that does not open is
    logged and set aside, and the aggregate is loaded from its events instead). There is
    no aggregate cache: a cached aggregate would skip the check (the constructor refuses
    one)."""

    def get(self, aggregate_id: Any, *, projector_func: Any = project, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)

    def _reconstruct_aggregate(self, aggregate_id: Any, version: int | None, projector_func: Any) -> Any:
        events: ChainedEventStore = self.event_store  # type: ignore[assignment]
        snapshot, gt, at = None, None, None
        if self.snapshot_store is not None:
            found = self.snapshot_store.recorder.select_events(aggregate_id, desc=True, limit=1, lte=version)
            if found and not bytes(found[0].state).startswith(SEALED):
                found = []  # taken before snapshots were sealed: not used, the events tell
            if found:
                try:
                    at, _ = self.snapshot_store.mapper.open_snapshot(found[0])
                    snapshot = self.snapshot_store.mapper.to_domain_event(found[0])
                    gt = found[0].originator_version
                except IntegrityViolation as violation:  # never used; the events still tell
                    violated(violation, events.service)
                    snapshot, at = None, None
        aggregate = projector_func(None, [*([snapshot] if snapshot is not None else []),
                                          *events.load(aggregate_id, gt=gt, lte=version, at=at)])
        if aggregate is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} not found.")
        return aggregate


class ServiceApplication(EventSourcedProjection[uuid.UUID]):
    """An eventsourcing application that also applies integration events from Kafka.

    Subclasses name their consumer group and the event classes they consume and implement
    `on_event`, collecting new aggregate events on the processing event (never calling
    `save`), so that they are recorded in one transaction with the tracking record and
    the receipt.
    """

    group: str = ""
    consumes: tuple[type[Event], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Rung after every commit of new events, so the loops that follow this store's
        # log (relay, desk, dispatcher) need not poll it often (contracts.wakeup).
        self.recorded = Wakeup()
        super().__init__(*args, **kwargs)

    def _record(self, processing_event: ProcessingEvent[uuid.UUID]) -> Any:
        recordings = super()._record(processing_event)
        if recordings:
            self.recorded.ring()
        return recordings

    def record(self, processing_event: ProcessingEvent[uuid.UUID]) -> Any:
        """Records what a follower of the log decided, with its tracking, in one
        transaction, and snapshots what is due (`contracts.following`)."""
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        return recordings

    def construct_mapper(self) -> Mapper:
        # Every stored event is chained to the one before it (contracts.chain) and stamped
        # with who caused it and in which trace (contracts.actors).
        mapper = self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=ServiceMapper)
        mapper.default_actor = f"service:tweespoor-{type(self).group}"
        return mapper

    def construct_recorder(self) -> Any:
        # Two processes starting at once on one PostgreSQL database race to create the same
        # tables and functions ("tuple concurrently updated"); the loser tries again.
        for attempt in range(STARTUP_ATTEMPTS):
            try:
                return super().construct_recorder()
            except PersistenceError:
                if attempt == STARTUP_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))  # apart, not in step again
        raise AssertionError("unreachable")

    def construct_repository(self) -> Any:
        repository = super().construct_repository()
        if repository.cache is not None:
            raise ValueError("an aggregate cache would serve aggregates without checking their chain")
        repository.__class__ = ServiceRepository  # the same repository, verifying, with its faster default
        return repository

    def construct_event_store(self) -> Any:
        self.mapper.attach(self.recorder)
        self.audit_index = AuditIndex(self.recorder)
        # Snapshots are sealed with a key outside the store (the service's checkpoint key).
        from contracts.checkpoints import load_key
        self.mapper.seal = seal_key(load_key(type(self).group or "service", dict(self.env),
                                             ephemeral="PERSISTENCE_MODULE" not in self.env
                                             or self.env.get("PERSISTENCE_MODULE") == "eventsourcing.popo"))
        store = ChainedEventStore(mapper=self.mapper, recorder=self.recorder)
        store.service = type(self).group
        return store

    # The signed heads of this store's streams (`contracts.checkpoints.CheckpointIndex`),
    # set when the service's checkpointer runs; loads and the audit compare with them.
    @property
    def anchors(self) -> Any:
        return self.events.anchors

    @anchors.setter
    def anchors(self, index: Any) -> None:
        self.events.anchors = index

    def verify_chain(self, originator_id: uuid.UUID) -> ChainReport:
        """Whether one aggregate's stored events are as they were recorded (and, once
        checkpoints are known, as a signed checkpoint holds them)."""
        return verify(self.recorder, originator_id, self.events.anchor(originator_id))

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def position(self, topic: str, partition: int) -> int | None:
        return self.recorder.max_tracking_id(tracking_name(self.group, topic, partition))

    def incarnation(self, topic: str, topic_id: str) -> int:
        return ordinal_in_tracking(self.recorder, self.group, topic, topic_id)

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        name = tracking_name(self.group, topic, partition)
        if self.recorder.has_tracking_id(name, offset):
            return Outcome.SEEN_OFFSET
        if not isinstance(cloud_event.data, self.consumes):
            return Outcome.IGNORED
        attrs = cloud_event.attributes
        if Receipt.create_id(attrs.source, attrs.id, attrs.type) in self.repository:
            return Outcome.SEEN_EVENT
        def attempt() -> Outcome:
            self.process_event(cloud_event, Tracking(name, offset))  # type: ignore[arg-type]
            return Outcome.APPLIED

        # A loss means either another member applied it first (a rebalance race: the
        # effect is there once) or another writer moved one of its aggregates on (a version
        # conflict: decide again on fresh state). Only the records tell which. Still losing
        # after the rule's attempts, the record is left to the inbox (retried, never lost).
        return retry_on_conflict(
            attempt, what="record",
            settled=lambda: Outcome.SEEN_EVENT if self.has_applied(cloud_event, topic, partition, offset) else None,
            exhausted="raise")

    def has_applied(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> bool:
        """Whether this record's offset or this event's receipt is on record."""
        attrs = cloud_event.attributes
        return (self.recorder.has_tracking_id(tracking_name(self.group, topic, partition), offset)
                or Receipt.create_id(attrs.source, attrs.id, attrs.type) in self.repository)

    def policy(self, domain_event: Any, processing_event: ProcessingEvent[uuid.UUID]) -> None:
        cloud_event: CloudEvent = domain_event
        attrs = cloud_event.attributes
        processing_event.collect_events(Receipt(attrs.source, attrs.id, attrs.type))
        self.on_event(cloud_event.data, attrs, processing_event)

    def on_event(
        self, event: Event, attributes: Attributes, processing_event: ProcessingEvent[uuid.UUID]
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} consumes nothing")
