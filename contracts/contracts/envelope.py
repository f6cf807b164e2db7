"""CloudEvents 1.0 after the NL GOV profile, in Kafka's binary content mode.

The record value is the JSON payload; every context attribute travels in a `ce_*`
header and `datacontenttype` in `content-type`. The record key and `subject` are the
pseudonymous trajectory id, never anything personal.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.events import Event, event_class
from contracts.municipalities import oin

# Deterministic ids: a relay that publishes the same stored event twice publishes the
# same CloudEvent id, so consumers can treat (source, id) seen before as done.
ID_NAMESPACE = uuid.UUID("6f1c2a57-43a1-4c0e-9a55-7d5d9c0b7e21")
SEQUENCE_WIDTH = 20  # zero-padded so that `sequence` sorts lexicographically


class Attributes(BaseModel):
    """The context attributes of one CloudEvent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(pattern=r"^urn:nld:[a-z0-9:.-]+$", max_length=256)
    type: str = Field(pattern=r"^[a-z0-9]+(\.[a-z0-9-]+)+\.v[0-9]+$", max_length=256)
    subject: str = Field(min_length=1, max_length=64)
    time: dt.datetime
    sequence: str | None = Field(default=None, pattern=r"^[0-9]{1,20}$")
    # Extension: who caused it (`user:`/`provider:` + credential name, or `service:`);
    # a credential's name, never a person's data.
    actor: str | None = Field(default=None, pattern=r"^(user|provider|service):[^\x00-\x1f]{1,120}$")
    datacontenttype: Literal["application/json"] = "application/json"


@dataclass(frozen=True)
class CloudEvent:
    """An integration event with its envelope."""

    attributes: Attributes
    data: Event

    @property
    def key(self) -> bytes:
        return self.attributes.subject.encode()


def source_urn(municipality: str, system: str) -> str:
    """`urn:nld:oin:<OIN>:systeem:<system>`: who (the municipality) and which system."""
    return f"urn:nld:oin:{oin(municipality)}:systeem:{system}"


def envelope(
    data: Event,
    *,
    source: str,
    origin: str,
    sequence: int | None,
    time: dt.datetime,
    actor: str | None = None,
) -> CloudEvent:
    """Wraps a payload; `origin` names what it was made from (stored event and index),
    so that publishing the same origin again gives the same id."""
    return CloudEvent(
        Attributes(
            id=str(uuid.uuid5(ID_NAMESPACE, f"{source}|{origin}")),
            source=source,
            type=data.type,
            subject=str(data.trajectory_id),
            time=time,
            sequence=None if sequence is None else str(sequence).zfill(SEQUENCE_WIDTH),
            actor=actor,
        ),
        data,
    )


# --- Kafka binding -------------------------------------------------------------------

Headers = list[tuple[str, bytes]]


class PoisonRecord(Exception):
    """A record this consumer can never process; `reason` is safe to log (no payload)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownEventType(PoisonRecord):
    """A well-formed CloudEvent whose type (or version) the catalogue does not know."""


def to_record(event: CloudEvent) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) in binary content mode."""
    attrs = event.attributes.model_dump(mode="json", exclude_none=True)
    headers: Headers = [("content-type", attrs.pop("datacontenttype").encode())]
    headers += [(f"ce_{name}", str(value).encode()) for name, value in attrs.items()]
    return event.key, event.data.model_dump_json().encode(), headers


# Header name -> attribute, looked up once per header rather than sliced (decoding every
# record of a rebuild goes through here).
_ATTRIBUTE_OF = {f"ce_{name}": name for name in Attributes.model_fields} | {"content-type": "datacontenttype"}


def read_attributes(headers: Headers) -> Attributes:
    """The envelope alone, without decoding the payload (dedupe and routing need no more)."""
    found: dict[str, str] = {}
    try:
        for name, value in headers:
            field = _ATTRIBUTE_OF.get(name)
            if field is None and name.startswith("ce_"):
                field = name[3:]  # an extension the model does not know: refused as extra
            if field is not None:
                found[field] = value.decode()
        return Attributes.model_validate(found)
    except (UnicodeDecodeError, ValidationError) as error:
        raise PoisonRecord(f"invalid CloudEvent attributes: {_fields(error)}") from None


def from_record(key: bytes | None, value: bytes | None, headers: Headers) -> CloudEvent:
    """Decodes and validates a record; raises PoisonRecord with a reason when it cannot."""
    attributes = read_attributes(headers)
    model = event_class(attributes.type)
    if model is None:
        raise UnknownEventType(f"unknown event type {attributes.type}")
    if value is None:
        raise PoisonRecord("record has no value")
    try:
        # Parsed and validated in one pass by pydantic-core, not through Python's json
        data = model.model_validate_json(value)
    except (ValueError, ValidationError) as error:
        raise PoisonRecord(f"invalid {attributes.type} payload: {_fields(error)}") from None
    if key is not None and key != attributes.subject.encode():
        raise PoisonRecord("record key differs from ce_subject")
    if str(data.trajectory_id) != attributes.subject:
        raise PoisonRecord("ce_subject differs from the payload's trajectory_id")
    return CloudEvent(attributes, data)


def _fields(error: Exception) -> str:
    """Which fields were wrong and why, without echoing their values (they may be personal)."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}" for e in error.errors()
        )
    return type(error).__name__
