"""Which incarnation of a topic a position belongs to.

A Kafka offset means something only on the topic it was read from. A topic deleted and
created again (a cluster rebuilt or restored, a development broker started afresh) starts
again at offset 0, and a consumer that resumed at the offset its store remembers would
skip every record below it. Kafka gives each topic a random id when it is created
(KIP-516). aiokafka speaks Metadata v5, which does not carry it, so `topic_ids` asks with
Metadata v10.

A store numbers the incarnations of each topic it has read, in the order it met them.
Positions on the first keep the topic's plain name, so a store written before incarnations
were tracked resumes where it was; positions on a later one are kept under
`<topic>#<n>`, so a position is never used on an incarnation it was not taken on. A new
incarnation is read from its start: receipts make reading again safe.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from io import BytesIO
from typing import Any

from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean, CompactArray, CompactString, Int16, Int32, Schema, TaggedFields,
)
from eventsourcing.persistence import IntegrityError, Tracking

log = logging.getLogger(__name__)


class _Uuid(AbstractType[bytes]):
    @classmethod
    def encode(cls, value: bytes) -> bytes:
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        return data.read(16)


class _MetadataResponse_v10(Response):
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", CompactArray(("node_id", Int32), ("host", CompactString("utf-8")), ("port", Int32),
                                 ("rack", CompactString("utf-8")), ("tags", TaggedFields))),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        ("topics", CompactArray(
            ("error_code", Int16), ("name", CompactString("utf-8")), ("topic_id", _Uuid),
            ("is_internal", Boolean),
            ("partitions", CompactArray(
                ("error_code", Int16), ("partition_index", Int32), ("leader_id", Int32),
                ("leader_epoch", Int32), ("replica_nodes", CompactArray(Int32)),
                ("isr_nodes", CompactArray(Int32)), ("offline_replicas", CompactArray(Int32)),
                ("tags", TaggedFields))),
            ("topic_authorized_operations", Int32), ("tags", TaggedFields))),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataRequest_v10(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = _MetadataResponse_v10
    SCHEMA = Schema(
        ("topics", CompactArray(("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields))),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIds(Request[_MetadataRequest_v10]):
    API_KEY = 3

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = list(topics)

    def build(self, request_struct_class: type[_MetadataRequest_v10]) -> _MetadataRequest_v10:
        return request_struct_class([(bytes(16), name, {}) for name in self.topics], False, False, False, {})


async def topic_ids(client: Any, topics: Iterable[str]) -> dict[str, str]:
    """The id of each of `topics` that exists now (an aiokafka client of a consumer or
    producer: `consumer._client`); a topic missing or not readable is left out."""
    response = await client.send(client.get_random_node(), _TopicIds(topics))
    return {name: str(uuid.UUID(bytes=topic_id))
            for error, name, topic_id, *_ in response.topics if error == 0 and any(topic_id)}


def tracked(topic: str, ordinal: int) -> str:
    """The name positions on the `ordinal`th incarnation of `topic` are kept under."""
    return topic if ordinal <= 1 else f"{topic}#{ordinal}"


def ordinal_in_tracking(recorder: Any, owner: str, topic: str, topic_id: str) -> int:
    """The number of this incarnation of `topic` among those `owner` (a consumer group,
    a relay) has met, kept as eventsourcing tracking records; a new one is numbered next.
    Two processes numbering one at once: the loser of the insert looks again."""
    known_name, count_name = f"incarnation:{owner}:{topic}:{topic_id}", f"incarnations:{owner}:{topic}"
    for _ in range(5):
        known = recorder.max_tracking_id(known_name)
        if known is not None:
            return int(known)
        ordinal = (recorder.max_tracking_id(count_name) or 0) + 1
        try:
            recorder.insert_tracking(Tracking(count_name, ordinal))
        except IntegrityError:
            continue  # another process numbered one a moment ago
        recorder.insert_tracking(Tracking(known_name, ordinal))
        if ordinal > 1:
            log.warning("topic_incarnation_new", extra={"owner": owner, "topic": topic,
                                                        "topic_id": topic_id, "incarnation": ordinal})
        return ordinal
    raise IntegrityError(f"could not number the incarnation of {topic}")
