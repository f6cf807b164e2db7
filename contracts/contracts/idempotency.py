"""Requests that may arrive twice: an `Idempotency-Key` from a case system, a
`webhook-id` from a provider. The first answer is recorded with the effects it
caused, in the same transaction, and returned again for the same key; the same key with
another request is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event

from contracts.problems import Problem

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


def replay(app: Application, scope: str, key: str, request: str) -> tuple[int, dict[str, Any]] | None:
    """The recorded answer for this key, None if there is none; 422 if the key was used
    for another request."""
    try:
        record: IdempotencyRecord = app.repository.get(record_id(scope, key))
    except AggregateNotFoundError:
        return None
    if record.request != request:
        raise Problem(422, "Idempotency key reused",
                      "This key was already used for a different request.",
                      errors=[{"field": "Idempotency-Key", "reason": "used for another request"}])
    return record.status, record.response
