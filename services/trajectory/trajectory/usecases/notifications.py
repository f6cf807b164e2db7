"""The webhooks out: providers' subscriptions, the dispatcher that turns recorded events
into deliveries, and the record of every attempt.

The dispatcher follows the service's own log (`contracts.following`) like the outbox relay
does and sees the same integration events with the same CloudEvent ids: a provider can
match a notification to what reporting shows. Deliveries are recorded with the
dispatcher's position in one transaction, so an event is scheduled once per subscription;
sending them is `delivery.WebhookSender`'s job.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import Notification

from contracts.envelope import CloudEvent, envelope, source_urn
from contracts.events import Event
from contracts.following import LogFollower, LogView
from contracts.problems import Conflict, Invalid, NotFound
from trajectory.domain import Trajectory
from trajectory.integration import SYSTEM, integration_events
from trajectory.subscriptions import (
    Backoff, Delivery, DeliveryConflict, ProviderSubscriptions, Subscription,
)
from trajectory.usecases import Write
from trajectory.views import delivery_view, subscription_view

log = logging.getLogger(__name__)
T = TypeVar("T")

DISPATCH = "webhooks"  # the tracking name of the dispatcher's position in the log
DISPATCH_BATCH = 200  # events read per round; a round that read fewer has caught up
EVENT_TYPES = tuple(sorted(t for t in Event.catalogue if ".trajectory." in t))
MIN_SECRET_BYTES = 24


class SecretStore(Protocol):
    """Where subscriptions' secrets are kept, beside the store (`trajectory.tables`)."""

    def put(self, subscription_id: uuid.UUID, secret: str) -> None: ...
    def get(self, subscription_id: uuid.UUID) -> str | None: ...
    def delete(self, subscription_id: uuid.UUID) -> None: ...


@dataclass(frozen=True)
class DeliveryJob:
    """One attempt to make: where, what, and the secret to sign it with."""

    delivery_id: uuid.UUID
    callback_url: str
    body: bytes
    secret: str
    message_id: str


class DueDeliveries:
    """Which deliveries are due when, and which belong to which subscription: a view of
    the Delivery events, caught up from the log before each use (so a restart rebuilds
    it, and another process's attempts show up in it)."""

    def __init__(self, app: Any) -> None:
        self.due: dict[uuid.UUID, dt.datetime] = {}
        self.by_subscription: dict[uuid.UUID, list[uuid.UUID]] = {}
        self._view = LogView(app, (Delivery.Scheduled, Delivery.Attempted, Delivery.Requeued,
                                   Delivery.Cancelled), self._apply)

    def catch_up(self) -> None:
        self._view.catch_up()

    def _apply(self, e: Any) -> None:
        delivery_id = e.originator_id
        match e:
            case Delivery.Scheduled():
                self.due[delivery_id] = e.due_at
                self.by_subscription.setdefault(e.subscription_id, []).append(delivery_id)
            case Delivery.Attempted() if e.next_attempt_at is not None:
                self.due[delivery_id] = e.next_attempt_at
            case Delivery.Requeued():
                self.due[delivery_id] = e.at
            case _:
                self.due.pop(delivery_id, None)


class SubscribedTypes:
    """Which event types each provider's active subscriptions want: a view of the
    Subscription events, caught up from the log before each dispatch (so a restart
    rebuilds it, and another process's subscriptions show up in it). It lets the
    dispatcher pass over an event no one is subscribed to without rebuilding its trajectory."""

    def __init__(self, app: Any) -> None:
        self.active: dict[uuid.UUID, tuple[str, frozenset[str]]] = {}  # id -> provider, types
        self._view = LogView(app, (Subscription.Created, Subscription.Cancelled), self._apply)

    def catch_up(self, until: int) -> None:
        self._view.catch_up(until)

    def providers_wanting(self, event_types: set[str]) -> set[str]:
        return {provider for provider, types in self.active.values() if types & event_types}

    def _apply(self, e: Any) -> None:
        match e:
            case Subscription.Created():
                self.active[e.originator_id] = (e.provider, frozenset(e.event_types))
            case _:
                self.active.pop(e.originator_id, None)


class Subscriptions:
    """Providers' subscriptions and the deliveries made to them, each provider its own."""

    def __init__(self, app: Any, secrets: SecretStore, due: DueDeliveries, *,
                 clock: Callable[[], dt.datetime], allow_http_callbacks: bool, write: Write) -> None:
        self.app, self.secrets, self.due, self._clock, self._write = app, secrets, due, clock, write
        self.schemes = ("https", "http") if allow_http_callbacks else ("https",)

    def subscribe(self, provider: str, *, callback_url: str, event_types: list[str],
                  secret: str) -> dict[str, Any]:
        self._check(callback_url, event_types, secret)

        def command() -> dict[str, Any]:
            subscription = Subscription(provider=provider, callback_url=callback_url,
                                        event_types=sorted(set(event_types)), created_at=self._clock())
            index = self.of(provider)
            index.add(subscription.id)
            # The secret first: a crash in between leaves an unused row, never a
            # subscription that cannot sign.
            self.secrets.put(subscription.id, secret)
            self.app.save(subscription, index)
            log.info("subscription_created", extra={"provider": provider,
                                                    "subscription": str(subscription.id)})
            return subscription_view(subscription)

        return self._write(command)

    def subscriptions(self, provider: str) -> list[dict[str, Any]]:
        index = self.of(provider)
        return [subscription_view(self.app.repository.get(uuid.UUID(s))) for s in index.subscription_ids]

    def subscription(self, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return subscription_view(self.own_subscription(subscription_id, provider))

    def cancel(self, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        def command() -> dict[str, Any]:
            subscription = self.own_subscription(subscription_id, provider)
            if subscription.is_active:
                subscription.cancel(self._clock())
                index = self.of(provider)
                index.remove(subscription.id)
                self.app.save(subscription, index)
                self.secrets.delete(subscription.id)
                log.info("subscription_cancelled", extra={"provider": provider,
                                                          "subscription": str(subscription_id)})
            return subscription_view(subscription)

        return self._write(command)

    def deliveries(self, subscription_id: uuid.UUID, provider: str,
                   state: str | None = None) -> list[dict[str, Any]]:
        """Every delivery of a subscription with every attempt, newest first."""
        self.own_subscription(subscription_id, provider)
        self.due.catch_up()
        ids = self.due.by_subscription.get(subscription_id, [])
        views = [delivery_view(self.app.repository.get(i)) for i in reversed(ids)]
        return [v for v in views if state is None or v["state"] == state]

    def delivery(self, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return delivery_view(self._own_delivery(delivery_id, provider))

    def retry_delivery(self, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        """Another round of attempts for a dead-lettered delivery."""
        def command() -> dict[str, Any]:
            delivery = self._own_delivery(delivery_id, provider)
            try:
                delivery.requeue(self._clock(), provider)
            except DeliveryConflict as conflict:
                raise Conflict("Not dead-lettered",
                               f"The delivery is {conflict.state}; only a dead-lettered one is retried.",
                               state=conflict.state, allowed=[]) from None
            self.app.save(delivery)
            return delivery_view(delivery)

        return self._write(command)

    def of(self, provider: str) -> ProviderSubscriptions:
        try:
            return self.app.repository.get(ProviderSubscriptions.create_id(provider))
        except AggregateNotFoundError:
            return ProviderSubscriptions(provider)

    def active(self, provider: str) -> list[Subscription]:
        index = self.of(provider)
        return [s for s in (self.app.repository.get(uuid.UUID(i)) for i in index.subscription_ids)
                if s.is_active]

    def own_subscription(self, subscription_id: uuid.UUID, provider: str) -> Subscription:
        return self._own(Subscription, subscription_id, provider)

    def _own_delivery(self, delivery_id: uuid.UUID, provider: str) -> Delivery:
        return self._own(Delivery, delivery_id, provider)

    def _own(self, kind: type[T], aggregate_id: uuid.UUID, provider: str) -> T:
        """The provider's own subscription or delivery; not found when it is another's."""
        try:
            found = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            found = None
        if not isinstance(found, kind) or found.provider != provider:  # type: ignore[attr-defined]
            raise NotFound(kind.__name__)
        return found

    def _check(self, callback_url: str, event_types: list[str], secret: str) -> None:
        errors = []
        parts = urlsplit(callback_url)
        if parts.scheme not in self.schemes or not parts.hostname:
            errors.append({"field": "callback_url",
                           "reason": f"must be an absolute {' or '.join(self.schemes)} URL"})
        elif parts.username or parts.password:
            errors.append({"field": "callback_url", "reason": "must not carry credentials"})
        if not event_types or set(event_types) - set(EVENT_TYPES):
            errors.append({"field": "event_types",
                           "reason": "one or more trajectory event types (see the event catalogue)"})
        if not _is_secret(secret):
            errors.append({"field": "secret",
                           "reason": f"a Standard Webhooks secret: whsec_ and at least {MIN_SECRET_BYTES} bytes in base64"})
        if errors:
            raise Invalid(errors)


class Dispatcher:
    """Schedules a delivery per subscription that wants an event, in log order, once.

    Deliveries are decided outside the write lock (they change nothing but themselves)
    and recorded under it. `recipients` names the providers an event concerns."""

    def __init__(self, app: Any, subscriptions: Subscriptions, *, clock: Callable[[], dt.datetime],
                 public_url: str, lock: AbstractContextManager[Any],
                 recipients: Callable[[Any], list[str]] | None = None) -> None:
        self.app, self.subscriptions, self._clock, self.public_url = app, subscriptions, clock, public_url
        self._recipients = recipients or self.recipients
        self.subscribed = SubscribedTypes(app)
        # every subscription recorded up to the last event of a page, before deciding on it
        self.follower = LogFollower(app, DISPATCH, self.decide, lock=lock, decide_under_lock=False,
                                    before=lambda page: self.subscribed.catch_up(page[-1].id))

    def run(self, limit: int = DISPATCH_BATCH) -> int:
        """Schedules deliveries for the events recorded since its position."""
        return self.follower.run_once(limit)

    def decide(self, notification: Notification, e: Any) -> list[Delivery]:
        translated = integration_events(e)
        if not translated:
            return []
        wanting = self.subscribed.providers_wanting({event.type for _, event in translated})
        if not wanting:  # no one to notify: spare the trajectory's rebuild
            return []
        subscriptions = [s for p in self._recipients(e) if p in wanting for s in self.subscriptions.active(p)]
        deliveries = []
        for index, (municipality, event) in enumerate(translated):
            cloud_event = envelope(event, source=source_urn(municipality, SYSTEM),
                                   origin=f"{notification.originator_id}/{notification.originator_version}/{index}",
                                   sequence=notification.originator_version, time=e.timestamp)
            for subscription in subscriptions:
                if subscription.wants(event.type):
                    deliveries.append(Delivery(
                        subscription_id=subscription.id, event_id=cloud_event.attributes.id,
                        provider=subscription.provider, callback_url=subscription.callback_url,
                        event_type=event.type, trajectory_id=e.originator_id,
                        body=self.notification_body(cloud_event), due_at=self._clock()))
        return deliveries

    def recipients(self, e: Any) -> list[str]:
        """The providers of the trajectory at that moment, and any the event names (the one
        just assigned, or released)."""
        trajectory: Trajectory = self.app.repository.get(e.originator_id, version=e.originator_version)
        providers = {a["provider"] for a in trajectory.assignments.values()}
        providers |= set((trajectory.closing or {}).get("released", {}).values())
        if provider := getattr(e, "provider", None):
            providers.add(provider)
        return sorted(providers)

    def notification_body(self, cloud_event: CloudEvent) -> str:
        """What happened, to which trajectory, and where to read the rest (with the
        provider's own credential): the CloudEvent's attributes with a `dataref`, no data."""
        attributes = cloud_event.attributes.model_dump(mode="json", exclude_none=True)
        attributes.pop("datacontenttype")
        attributes["dataref"] = f"{self.public_url}/trajectories/{cloud_event.attributes.subject}"
        return json.dumps(attributes, sort_keys=True, separators=(",", ":"))


class Attempts:
    """The deliveries due now, and the record of each attempt to make them."""

    def __init__(self, app: Any, secrets: SecretStore, due: DueDeliveries, *,
                 clock: Callable[[], dt.datetime], backoff: Backoff, write: Write) -> None:
        self.app, self.secrets, self.due, self._clock = app, secrets, due, clock
        self.backoff, self._write = backoff, write

    def due_deliveries(self, now: dt.datetime, limit: int = 20) -> list[DeliveryJob]:
        self.due.catch_up()
        due = sorted((at, i) for i, at in self.due.due.items() if at <= now)[:limit]
        jobs = []
        for _, delivery_id in due:
            delivery: Delivery = self.app.repository.get(delivery_id)
            if delivery.state != "pending":
                continue
            secret = self.secrets.get(delivery.subscription_id)
            subscription: Subscription = self.app.repository.get(delivery.subscription_id)
            if secret is None or not subscription.is_active:
                self._write(lambda d=delivery: self._cancel(d.id))
                continue
            jobs.append(DeliveryJob(delivery.id, delivery.callback_url, delivery.body.encode(),
                                    secret, delivery.message_id))
        return jobs

    def _cancel(self, delivery_id: uuid.UUID) -> None:
        delivery: Delivery = self.app.repository.get(delivery_id)
        delivery.cancel(self._clock())
        self.app.save(delivery)

    def record_attempt(self, delivery_id: uuid.UUID, *, at: dt.datetime, status_code: int | None,
                       error: str | None, duration_ms: int) -> str:
        """Records one attempt; returns the delivery's state after it."""
        def command() -> str:
            delivery: Delivery = self.app.repository.get(delivery_id)
            try:
                delivery.record_attempt(at, status_code, error, duration_ms, self.backoff)
            except DeliveryConflict:  # another worker finished it meanwhile
                return delivery.state
            self.app.save(delivery)
            return delivery.state

        state = self._write(command)
        event = {"delivered": "webhook_delivered", "dead-lettered": "webhook_dead_lettered"}
        log.log(logging.WARNING if state == "dead-lettered" else logging.INFO,
                event.get(state, "webhook_attempt_failed"),
                extra={"delivery": str(delivery_id), "status_code": status_code, "error": error})
        return state


def _is_secret(secret: str) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    try:
        return len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= MIN_SECRET_BYTES
    except (binascii.Error, ValueError):
        return False
