"""Audit replay: one trajectory, every event from every service, in order, with when it
happened in the world (valid time), when it was recorded and who caused it (the service,
user credential or provider stamped on the stored event, carried as `ce_actor`); its
state as it stood on a date and as it was known on a date; and whether Kafka and the
services' stores agree.

Reading from Kafka fetches exactly the records reporting's index names for the
trajectory (a seek per record), so a replay reads only its own events whatever the size
of the topics.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiokafka import TopicPartition

from contracts.audit import as_json
from contracts.envelope import Attributes, CloudEvent, from_record
from contracts.events import event_class
from contracts.events import Event
from contracts.kafka import KafkaSecurity, reader
from reporting.documents import Doc, key_of, new_document, project


def valid_on(event: Event) -> dt.date | None:
    """When it happened in the world: by convention the first date an event carries."""
    for name in type(event).model_fields:
        value = getattr(event, name)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
    return None


def service_of(event: CloudEvent) -> str:
    return event.attributes.source.rsplit(":", 1)[-1]


def ordered(events: list[CloudEvent]) -> list[CloudEvent]:
    """In the order they were recorded (ties: by service and their own sequence)."""
    return sorted(events, key=lambda e: (e.attributes.time, service_of(e), e.attributes.sequence or "",
                                         e.attributes.id))


async def from_kafka(bootstrap: str, positions: list[tuple[str, int, int]],
                     key: bytes | None = None) -> list[CloudEvent]:
    """Exactly the records named, one seek each; with `key`, each must be the trajectory's
    (a topic created again since it was indexed holds other records at those offsets)."""
    consumer = reader(bootstrap, security=KafkaSecurity.from_env(service="reporting"))
    await consumer.start()
    try:
        partitions = sorted({TopicPartition(t, p) for t, p, _ in positions})
        consumer.assign(partitions)
        events = []
        for topic, partition, offset in sorted(positions):
            tp = TopicPartition(topic, partition)
            consumer.seek(tp, offset)
            batch: list[Any] = []
            for _ in range(50):
                batch = (await consumer.getmany(tp, timeout_ms=200, max_records=1)).get(tp, [])
                if batch:
                    break
            if not batch or batch[0].offset != offset:
                raise LookupError(f"{topic}/{partition}/{offset} is no longer on Kafka")
            record = batch[0]
            if key is not None and record.key != key:
                raise LookupError(f"{topic}/{partition}/{offset} holds another trajectory's record")
            events.append(from_record(record.key, record.value, list(record.headers)))
        return ordered(events)
    finally:
        await consumer.stop()


def positions_of(doc: Doc) -> list[tuple[str, int, int]]:
    """Where the document's events are on Kafka (positions on a later incarnation of a
    topic are logged as `<topic>#<n>`, contracts.incarnation: the topic is the same name)."""
    out = []
    for position in doc.get("log", {}):
        topic, partition, offset = position.rsplit("/", 2)
        out.append((topic.split("#", 1)[0], int(partition), int(offset)))
    return out


def timeline(events: list[CloudEvent]) -> list[dict[str, Any]]:
    return [{"recorded_at": e.attributes.time.isoformat(),
             "valid_on": (v.isoformat() if (v := valid_on(e.data)) else None),
             "service": service_of(e), "actor": e.attributes.actor, "what": e.attributes.type,
             "id": e.attributes.id,
             "source": e.attributes.source, "data": e.data.model_dump(mode="json")}
            for e in ordered(events)]


def as_of(events: list[CloudEvent], *, valid: dt.date | None, known: dt.datetime | None) -> Doc | None:
    """The trajectory as it stood on `valid` (world time), as the system knew it at `known`
    (recorded time). A correction recorded later is absent under an earlier `known`."""
    doc: Doc | None = None
    for event in ordered(events):
        if known and event.attributes.time > known:
            continue
        day = valid_on(event.data)
        if valid and day and day > valid:
            continue
        if doc is None:
            doc = new_document(*key_of(event.data))
        project(doc, event.data, event.attributes)
    return doc


def compare(on_kafka: list[CloudEvent], in_stores: list[CloudEvent]) -> dict[str, Any]:
    """Whether the topics and the services' stores tell the same story."""
    kafka = {e.attributes.id: as_json(e) for e in on_kafka}
    stores = {e.attributes.id: as_json(e) for e in in_stores}
    different = sorted(i for i in kafka.keys() & stores.keys() if kafka[i] != stores[i])
    only_kafka, only_stores = sorted(kafka.keys() - stores.keys()), sorted(stores.keys() - kafka.keys())
    return {"agree": not (different or only_kafka or only_stores), "events": len(kafka.keys() | stores.keys()),
            "only_on_kafka": only_kafka, "only_in_stores": only_stores, "different": different}


def from_json(document: dict[str, Any]) -> CloudEvent:
    """A CloudEvent from its structured JSON form (as the services' audit endpoints give it)."""
    attributes = {k: v for k, v in document.items() if k != "data"}
    attributes.setdefault("datacontenttype", "application/json")
    model = event_class(document["type"])
    if model is None:
        raise LookupError(f"unknown event type {document['type']}")
    return CloudEvent(Attributes.model_validate(attributes), model.model_validate(document["data"]))
