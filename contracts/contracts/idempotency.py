"""Requests that may arrive twice: an `Idempotency-Key` from a case system, a
`webhook-id` from a provider. The first answer is recorded with the effects it
caused, in the same transaction, and returned again for the same key; the same key with
another request is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, NamedTuple

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from contracts.problems import Invalid

NAMESPACE = uuid.UUID("5c0a4c1e-93f4-4b8e-a7c2-2f6d9b1e7a10")


def fingerprint(body: Any) -> str:
    """A stable hash of a request body (canonical JSON), to tell another request apart."""
    if isinstance(body, bytes | bytearray):
        return hashlib.sha256(bytes(body)).hexdigest()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyRecord(Aggregate):
    """The first answer to a keyed request, within one caller's scope."""

    @staticmethod
    def create_id(scope: str, key: str, request: str, status: int, response: dict[str, Any]) -> uuid.UUID:
        return record_id(scope, key)

    @event("Recorded")
    def __init__(self, scope: str, key: str, request: str, status: int,
                 response: dict[str, Any]) -> None:
        self.scope = scope
        self.key = key
        self.request = request
        self.status = status
        self.response = response


def record_id(scope: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{scope}|{key}")


@dataclass(frozen=True)
class RequestKey:
    """A request that may come twice: its key (`Idempotency-Key`, `webhook-id`) within the
    caller's scope, and the request's fingerprint, to tell another request under the same
    key apart."""

    scope: str
    key: str
    request: str


class Answer(NamedTuple):
    """A command's first answer as it is recorded and given again: created (a new record)
    or accepted (taken in; its effects follow), and the body."""

    status: int
    body: dict[str, Any]

    @classmethod
    def created(cls, body: dict[str, Any]) -> Answer:
        return cls(201, body)

    @classmethod
    def accepted(cls, body: dict[str, Any]) -> Answer:
        return cls(202, body)


def replay(app: Application, key: RequestKey) -> Answer | None:
    """The recorded answer for this key, None if there is none; Invalid if the key was
    used for another request."""
    try:
        record: IdempotencyRecord = app.repository.get(record_id(key.scope, key.key))
    except AggregateNotFoundError:
        return None
    if record.request != key.request:
        raise Invalid([{"field": "Idempotency-Key", "reason": "used for another request"}],
                      title="Idempotency key reused",
                      detail="This key was already used for a different request.")
    return Answer(record.status, record.response)


def recorded(key: RequestKey | None, answer: Answer) -> list[IdempotencyRecord]:
    """The record to save with the command's effects (in one transaction), if it was keyed."""
    if key is None:
        return []
    return [IdempotencyRecord(key.scope, key.key, key.request, answer.status, answer.body)]
