"""Providers' subscriptions to their trajectories' events, and each delivery to them.

Plain domain code: no HTTP. A delivery is tried at least once and again with
exponential backoff until the receiver answers 2xx, or it is dead-lettered after the
last try; every attempt is recorded, so a provider (or an auditor) can see what was
sent when and what came back. The secret that signs deliveries is not kept here: events
are never deleted, and a secret must be.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate, event

NAMESPACE = uuid.UUID("8e5b7c21-0d4f-4a36-9b18-c6a2f3e9d057")


@dataclass(frozen=True)
class Backoff:
    """When to try again: `first_delay` seconds after the first failure, `factor` times
    longer after each next one (at most `max_delay`), and no more than `max_attempts`
    tries in all. No jitter: there are few receivers, and a predictable schedule is what
    a provider can plan around (and what a test can check)."""

    first_delay: float = 30.0
    factor: float = 2.0
    max_delay: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempt: int) -> dt.timedelta:
        """The wait after failed attempt number `attempt` (1-based)."""
        seconds = min(self.first_delay * self.factor ** (attempt - 1), self.max_delay)
        return dt.timedelta(seconds=seconds)


class Subscription(Aggregate):
    """A provider's callback for some types of event about its trajectories."""

    @event("Created")
    def __init__(self, *, provider: str, callback_url: str, event_types: list[str],
                 created_at: dt.datetime) -> None:
        self.provider = provider
        self.callback_url = callback_url
        self.event_types = list(event_types)
        self.created_at = created_at
        self.cancelled_at: dt.datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.cancelled_at is None

    def wants(self, event_type: str) -> bool:
        return self.is_active and event_type in self.event_types

    @event("Cancelled")
    def cancel(self, at: dt.datetime) -> None:
        self.cancelled_at = at


class ProviderSubscriptions(Aggregate):
    """Which subscriptions one provider has: where the dispatcher looks for recipients."""

    @staticmethod
    def create_id(provider: str) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"subscriptions|{provider}")

    @event("Started")
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.subscription_ids: list[str] = []

    @event("Added")
    def add(self, subscription_id: uuid.UUID) -> None:
        self.subscription_ids.append(str(subscription_id))

    @event("Removed")
    def remove(self, subscription_id: uuid.UUID) -> None:
        self.subscription_ids.remove(str(subscription_id))


class DeliveryConflict(Exception):
    """The delivery's state does not allow the command."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


class Delivery(Aggregate):
    """One event for one subscription: the thin, signed notification and its attempts.
    Its id derives from (subscription, event), so scheduling it twice schedules it once."""

    @staticmethod
    def create_id(subscription_id: uuid.UUID, event_id: str, **_: Any) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"delivery|{subscription_id}|{event_id}")

    @event("Scheduled")
    def __init__(self, *, subscription_id: uuid.UUID, event_id: str, provider: str,
                 callback_url: str, event_type: str, trajectory_id: uuid.UUID, body: str,
                 due_at: dt.datetime) -> None:
        self.subscription_id = subscription_id
        self.event_id = event_id
        self.provider = provider
        self.callback_url = callback_url
        self.event_type = event_type
        self.trajectory_id = trajectory_id
        self.body = body  # kept, so every attempt sends the same bytes
        self.created_at = due_at
        self.next_attempt_at: dt.datetime | None = due_at
        self.state = "pending"
        self.attempts: list[dict[str, Any]] = []
        self.round_starts = 0  # attempts before the last requeue

    @property
    def message_id(self) -> str:
        """The `webhook-id`: the same on every attempt, so the receiver can dedupe."""
        return f"msg_{self.id.hex}"

    def record_attempt(self, at: dt.datetime, status_code: int | None, error: str | None,
                       duration_ms: int, backoff: Backoff) -> None:
        if self.state != "pending":
            raise DeliveryConflict(self.state)
        number = len(self.attempts) + 1
        delivered = status_code is not None and 200 <= status_code < 300
        last = number - self.round_starts >= backoff.max_attempts
        next_at = None if delivered or last else at + backoff.delay(number - self.round_starts)
        self._attempted(number, at, status_code, error, duration_ms, delivered, next_at)

    @event("Attempted")
    def _attempted(self, number: int, at: dt.datetime, status_code: int | None, error: str | None,
                   duration_ms: int, delivered: bool, next_attempt_at: dt.datetime | None) -> None:
        self.attempts.append({"number": number, "at": at, "status_code": status_code,
                              "error": error, "duration_ms": duration_ms})
        self.next_attempt_at = next_attempt_at
        if delivered:
            self.state = "delivered"
        elif next_attempt_at is None:
            self.state = "dead-lettered"

    def requeue(self, at: dt.datetime, by: str) -> None:
        """Another round of attempts for a dead-lettered delivery, from now."""
        if self.state != "dead-lettered":
            raise DeliveryConflict(self.state)
        self._requeued(at, by)

    @event("Requeued")
    def _requeued(self, at: dt.datetime, by: str) -> None:
        self.state = "pending"
        self.next_attempt_at = at
        self.round_starts = len(self.attempts)

    def cancel(self, at: dt.datetime) -> None:
        """The subscription is gone: nothing more is sent."""
        if self.state == "pending":
            self._cancelled(at)

    @event("Cancelled")
    def _cancelled(self, at: dt.datetime) -> None:
        self.state = "cancelled"
        self.next_attempt_at = None
