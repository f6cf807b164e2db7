"""The outbox relay: a service's notification log, published to Kafka in recorded order.

The log is the outbox, so there is no dual write: an aggregate's events are recorded in
one transaction, and the relay publishes them afterwards and then records how far it got
(a tracking record in the same store). A relay that dies between publishing and
recording publishes the same events again on restart, with the same CloudEvent ids
(derived from the stored event), and consumers treat an id seen before as done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking

from contracts import tracing
from contracts.actors import stamp_of
from contracts.audit import AuditIndex
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import Event
from contracts.incarnation import ordinal_in_tracking, topic_ids, tracked
from contracts.wakeup import Waiter, Wakeup

log = logging.getLogger(__name__)

# What a service makes of one of its own domain events: (municipality, integration
# event) pairs, usually one or none. Internal events translate to nothing.
Translate = Callable[[Any], Sequence[tuple[str, Event]]]

POSITION = "outbox"  # the tracking name under which a relay records its position

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]

# How long an idle relay waits before looking again: without a wake-up call only this
# finds new events; with one, only what another process recorded in the same store.
POLL_SECONDS = 0.05
WOKEN_POLL_SECONDS = 1.0
INCARNATION_SECONDS = 5.0  # how often the topic's id is looked at


class OutboxRelay:
    """Publishes one service's recorded domain events, translated, to its event topic."""

    def __init__(
        self,
        *,
        app: Application,
        translate: Translate,
        producer: AIOKafkaProducer,
        topic: str,
        system: str,
        batch_size: int = 500,
        idle_seconds: float | None = None,
        after_publish: Callable[[int], Awaitable[None]] | None = None,
        audit_index: AuditIndex | None = None,
        wakeup: Wakeup | None = None,
        readiness: Any = None,
    ) -> None:
        self.app = app
        self.readiness = readiness  # told when the relay cannot publish, and when it can again
        self.translate = translate
        self.producer = producer
        self.topic = topic
        self.system = system
        self.batch_size = batch_size
        # Rung when this process recorded new events (by default the application's own).
        self.wakeup = wakeup if wakeup is not None else getattr(app, "recorded", None)
        if idle_seconds is None:
            idle_seconds = POLL_SECONDS if self.wakeup is None else WOKEN_POLL_SECONDS
        self.idle_seconds = idle_seconds
        # A seam for the crash tests: runs after Kafka acknowledged, before the position
        # is recorded — the one moment a crash makes the relay publish twice.
        self.after_publish = after_publish
        self.audit_index = audit_index if audit_index is not None else getattr(app, "audit_index", None)
        # The position belongs to the topic's incarnation (contracts.incarnation): a topic
        # created again is published to again from the log's start, under a name of its own.
        self.position_name = POSITION
        self.topic_id: str | None = None
        self.incarnation_seconds = INCARNATION_SECONDS
        self.looked = -INCARNATION_SECONDS

    def position(self) -> int:
        return self.app.recorder.max_tracking_id(self.position_name) or 0

    async def follow_incarnation(self) -> None:
        """Looks at the topic's id now and then; a new one restarts the position."""
        client = getattr(self.producer, "client", None)
        if client is None or time.monotonic() - self.looked < self.incarnation_seconds:
            return
        topic_id = (await topic_ids(client, [self.topic])).get(self.topic)
        self.looked = time.monotonic()
        if topic_id is None or topic_id == self.topic_id:
            return
        ordinal = await asyncio.to_thread(ordinal_in_tracking, self.app.recorder, POSITION, self.topic, topic_id)
        if self.topic_id is not None:
            log.warning("outbox_topic_recreated", extra={"topic": self.topic, "previous_id": self.topic_id,
                                                         "topic_id": topic_id, "incarnation": ordinal,
                                                         "action": "publishing the log again from its start"})
        self.topic_id, self.position_name = topic_id, tracked(POSITION, ordinal)

    async def run(self) -> None:
        """Relays until cancelled; when there was nothing to do, waits until this process
        records something or `idle_seconds` pass."""
        waiter = self.wakeup.waiter() if self.wakeup is not None else None
        try:
            while True:
                try:
                    covered = await self.relay_once()
                    if self.readiness is not None:
                        self.readiness.progressing(f"relay {self.topic}")
                    if covered < self.batch_size:  # caught up
                        await self._idle(waiter)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # store or broker away: try again, nothing is lost
                    log.exception("outbox_relay_failed", extra={"topic": self.topic})
                    if self.readiness is not None:  # not ready while the outbox cannot drain
                        self.readiness.stalled(f"relay {self.topic}", f"cannot publish ({type(error).__name__})")
                    await asyncio.sleep(1.0)
        finally:
            if waiter is not None:
                waiter.close()

    async def _idle(self, waiter: Waiter | None) -> None:
        if waiter is None:
            await asyncio.sleep(self.idle_seconds)
        else:
            await waiter.wait(self.idle_seconds)

    async def relay_once(self) -> int:
        """Publishes the next batch; returns how many stored events it covered."""
        await self.follow_incarnation()
        last_id, covered, records = await asyncio.to_thread(self._pending)
        if last_id is None:
            return 0
        sends = [
            await self.producer.send(self.topic, value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*sends)  # every record acknowledged by all replicas
        if self.after_publish is not None:
            await self.after_publish(last_id)
        await asyncio.to_thread(self.app.recorder.insert_tracking, Tracking(self.position_name, last_id))
        log.debug("outbox_relayed", extra={"topic": self.topic, "position": last_id})
        return covered

    def _pending(self) -> tuple[int | None, int, list[Record]]:
        notifications = self.app.recorder.select_notifications(
            self.position(), self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return None, 0, []
        records, speaks_about = [], []
        for notification in notifications:
            domain_event = self.app.mapper.to_domain_event(notification)
            stamp = stamp_of(self.app.mapper, notification)
            for index, (municipality, payload) in enumerate(self.translate(domain_event)):
                speaks_about.append((str(payload.trajectory_id), str(notification.originator_id)))
                cloud_event = envelope(
                    payload,
                    source=source_urn(municipality, self.system),
                    origin=f"{notification.originator_id}/{notification.originator_version}/{index}",
                    sequence=notification.originator_version,
                    time=domain_event.timestamp,
                    actor=stamp.get("actor"),
                )
                key, value, headers = to_record(cloud_event)
                # The trace the event was recorded in travels on, for the consumers to continue.
                traceparent = stamp.get("traceparent") or tracing.derived(cloud_event.attributes.id)
                records.append((key, value, [*headers, (tracing.HEADER, traceparent.encode())]))
        if self.audit_index is not None:
            self.audit_index.add(speaks_about)  # before publishing: no event goes unindexed
        return notifications[-1].id, len(notifications), records
