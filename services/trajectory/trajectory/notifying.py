"""Use cases of the webhooks out (part of `TrajectoryApplication`): subscriptions, the
dispatcher that turns recorded events into deliveries, and the record of every attempt.

The dispatcher follows the service's own log like the outbox relay does and sees the
same integration events with the same CloudEvent ids: a provider can match a
notification to what reporting shows. Deliveries are recorded with the dispatcher's
position in one transaction, so an event is scheduled once per subscription; sending
them is `delivery.WebhookSender`'s job.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.utils import get_topic

from contracts.envelope import CloudEvent, envelope, source_urn
from contracts.events import Event
from contracts.problems import Problem
from trajectory.domain import Trajectory
from trajectory.integration import SYSTEM, integration_events
from trajectory.subscriptions import Delivery, DeliveryConflict, ProviderSubscriptions, Subscription

if TYPE_CHECKING:
    from trajectory.application import TrajectoryApplication

log = logging.getLogger(__name__)

DISPATCH = "webhooks"  # the tracking name of the dispatcher's position in the log
DISPATCH_BATCH = 200  # events read per round; a round that read fewer has caught up
EVENT_TYPES = tuple(sorted(t for t in Event.catalogue if ".trajectory." in t))
MIN_SECRET_BYTES = 24


@dataclass(frozen=True)
class DeliveryJob:
    """One attempt to make: where, what, and the secret to sign it with."""

    delivery_id: uuid.UUID
    callback_url: str
    body: bytes
    secret: str
    message_id: str


class DeliveryIndex:
    """Which deliveries are due when, and which belong to which subscription: a view of
    the Delivery events in memory, caught up from the log before each use (so a restart
    rebuilds it, and another process's attempts show up in it)."""

    TOPICS = [get_topic(cls) for cls in (Delivery.Scheduled, Delivery.Attempted,
                                         Delivery.Requeued, Delivery.Cancelled)]

    def __init__(self) -> None:
        self.position = 0
        self.due: dict[uuid.UUID, dt.datetime] = {}
        self.by_subscription: dict[uuid.UUID, list[uuid.UUID]] = {}
        self._lock = threading.Lock()

    def catch_up(self, app: TrajectoryApplication) -> None:
        _catch_up(app, self, self.TOPICS, app.recorder.max_notification_id() or 0)

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


class SubscriptionIndex:
    """Which event types each provider's active subscriptions want: a view of the
    Subscription events in memory, caught up from the log before each dispatch (so a
    restart rebuilds it, and another process's subscriptions show up in it). It lets the
    dispatcher pass over an event no one is subscribed to without rebuilding its trajectory."""

    TOPICS = [get_topic(cls) for cls in (Subscription.Created, Subscription.Cancelled)]

    def __init__(self) -> None:
        self.position = 0
        self.active: dict[uuid.UUID, tuple[str, frozenset[str]]] = {}  # id -> provider, types
        self._lock = threading.Lock()

    def catch_up(self, app: TrajectoryApplication, until: int) -> None:
        _catch_up(app, self, self.TOPICS, until)

    def providers_wanting(self, event_types: set[str]) -> set[str]:
        return {provider for provider, types in self.active.values() if types & event_types}

    def _apply(self, e: Any) -> None:
        match e:
            case Subscription.Created():
                self.active[e.originator_id] = (e.provider, frozenset(e.event_types))
            case _:
                self.active.pop(e.originator_id, None)


def _catch_up(app: TrajectoryApplication, index: Any, topics: list[str], until: int) -> None:
    """Applies an index's events up to notification `until`, one already in the log (the
    store numbers notifications in commit order, so none before it can still appear).
    The next search starts there, not at the index's last event of its own kinds, which
    may lie far back (or at the log's start, when there is none yet)."""
    with index._lock:
        while index.position < until and (page := app.recorder.select_notifications(
                index.position, 500, stop=until, topics=topics, inclusive_of_start=False)):
            for notification in page:
                index._apply(app.mapper.to_domain_event(notification))
            index.position = page[-1].id
        index.position = max(index.position, until)


class Notifications:
    """Providers' subscriptions and the deliveries made to them."""

    # --- subscriptions -------------------------------------------------------------------

    def subscribe(self: TrajectoryApplication, provider: str, *, callback_url: str,
                  event_types: list[str], secret: str) -> dict[str, Any]:
        self._check_subscription(callback_url, event_types, secret)

        def command() -> dict[str, Any]:
            subscription = Subscription(provider=provider, callback_url=callback_url,
                                        event_types=sorted(set(event_types)), created_at=self.clock())
            index = self._subscriptions_of(provider)
            index.add(subscription.id)
            # The secret first: a crash in between leaves an unused row, never a
            # subscription that cannot sign.
            self.secrets.put(subscription.id, secret)
            self.save(subscription, index)
            log.info("subscription_created", extra={"provider": provider,
                                                    "subscription": str(subscription.id)})
            return _subscription_view(subscription)

        return self.write(command)

    def subscriptions(self: TrajectoryApplication, provider: str) -> list[dict[str, Any]]:
        index = self._subscriptions_of(provider)
        return [_subscription_view(self.repository.get(uuid.UUID(s))) for s in index.subscription_ids]

    def subscription(self: TrajectoryApplication, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return _subscription_view(self._own_subscription(subscription_id, provider))

    def cancel_subscription(self: TrajectoryApplication, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        def command() -> dict[str, Any]:
            subscription = self._own_subscription(subscription_id, provider)
            if subscription.is_active:
                subscription.cancel(self.clock())
                index = self._subscriptions_of(provider)
                index.remove(subscription.id)
                self.save(subscription, index)
                self.secrets.delete(subscription.id)
                log.info("subscription_cancelled", extra={"provider": provider,
                                                          "subscription": str(subscription_id)})
            return _subscription_view(subscription)

        return self.write(command)

    def deliveries(self: TrajectoryApplication, subscription_id: uuid.UUID, provider: str,
                   state: str | None = None) -> list[dict[str, Any]]:
        """Every delivery of a subscription with every attempt, newest first."""
        self._own_subscription(subscription_id, provider)
        self.delivery_index.catch_up(self)
        ids = self.delivery_index.by_subscription.get(subscription_id, [])
        views = [_delivery_view(self.repository.get(i)) for i in reversed(ids)]
        return [v for v in views if state is None or v["state"] == state]

    def delivery(self: TrajectoryApplication, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return _delivery_view(self._own_delivery(delivery_id, provider))

    def retry_delivery(self: TrajectoryApplication, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        """Another round of attempts for a dead-lettered delivery."""
        def command() -> dict[str, Any]:
            delivery = self._own_delivery(delivery_id, provider)
            try:
                delivery.requeue(self.clock(), provider)
            except DeliveryConflict as conflict:
                raise Problem(409, "Not dead-lettered",
                              f"The delivery is {conflict.state}; only a dead-lettered one is retried.",
                              state=conflict.state, allowed=[]) from None
            self.save(delivery)
            return _delivery_view(delivery)

        return self.write(command)

    def _check_subscription(self: TrajectoryApplication, callback_url: str, event_types: list[str],
                            secret: str) -> None:
        errors = []
        parts = urlsplit(callback_url)
        schemes = ("https", "http") if self.config.allow_http_callbacks else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            errors.append({"field": "callback_url", "reason": f"must be an absolute {' or '.join(schemes)} URL"})
        elif parts.username or parts.password:
            errors.append({"field": "callback_url", "reason": "must not carry credentials"})
        if not event_types or set(event_types) - set(EVENT_TYPES):
            errors.append({"field": "event_types",
                           "reason": "one or more trajectory event types (see the event catalogue)"})
        if not _is_secret(secret):
            errors.append({"field": "secret",
                           "reason": f"a Standard Webhooks secret: whsec_ and at least {MIN_SECRET_BYTES} bytes in base64"})
        if errors:
            raise Problem(422, "Invalid request", "One or more fields are invalid.", errors=errors)

    def _subscriptions_of(self: TrajectoryApplication, provider: str) -> ProviderSubscriptions:
        try:
            return self.repository.get(ProviderSubscriptions.create_id(provider))
        except AggregateNotFoundError:
            return ProviderSubscriptions(provider)

    def _own_subscription(self: TrajectoryApplication, subscription_id: uuid.UUID, provider: str) -> Subscription:
        try:
            subscription = self.repository.get(subscription_id)
        except AggregateNotFoundError:
            subscription = None
        if not isinstance(subscription, Subscription) or subscription.provider != provider:
            raise Problem(404, "Subscription not found")
        return subscription

    def _own_delivery(self: TrajectoryApplication, delivery_id: uuid.UUID, provider: str) -> Delivery:
        try:
            delivery = self.repository.get(delivery_id)
        except AggregateNotFoundError:
            delivery = None
        if not isinstance(delivery, Delivery) or delivery.provider != provider:
            raise Problem(404, "Delivery not found")
        return delivery

    # --- the dispatcher ------------------------------------------------------------------

    def dispatch(self: TrajectoryApplication, limit: int = DISPATCH_BATCH) -> int:
        """Schedules deliveries for the events recorded since its position."""
        position = self.recorder.max_tracking_id(DISPATCH) or 0
        notifications = self.recorder.select_notifications(position, limit, inclusive_of_start=False)
        if notifications:  # every subscription recorded up to the last of these events
            self.subscription_index.catch_up(self, notifications[-1].id)
        skipped = None
        for notification in notifications:
            deliveries = self._deliveries_for(notification, self.mapper.to_domain_event(notification))
            if not deliveries:
                skipped = notification.id
                continue
            with self.writes:
                processing = ProcessingEvent[uuid.UUID](tracking=Tracking(DISPATCH, notification.id))
                processing.collect_events(*deliveries)
                try:
                    self._record(processing)
                except IntegrityError:  # another dispatcher got there first
                    return 0
            skipped = None
        if skipped is not None:
            try:
                self.recorder.insert_tracking(Tracking(DISPATCH, skipped))
            except IntegrityError:
                return 0
        return len(notifications)

    def _deliveries_for(self: TrajectoryApplication, notification: Any, e: Any) -> list[Delivery]:
        translated = integration_events(e)
        if not translated:
            return []
        wanting = self.subscription_index.providers_wanting({event.type for _, event in translated})
        if not wanting:  # no one to notify: spare the trajectory's rebuild
            return []
        subscriptions = [s for p in self._recipients(e) if p in wanting for s in self._active_subscriptions(p)]
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
                        body=self._thin(cloud_event), due_at=self.clock()))
        return deliveries

    def _recipients(self: TrajectoryApplication, e: Any) -> list[str]:
        """The providers of the trajectory at that moment, and any the event names (the one
        just assigned, or released)."""
        trajectory: Trajectory = self.repository.get(e.originator_id, version=e.originator_version)
        providers = {a["provider"] for a in trajectory.assignments.values()}
        providers |= set((trajectory.closing or {}).get("released", {}).values())
        if provider := getattr(e, "provider", None):
            providers.add(provider)
        return sorted(providers)

    def _active_subscriptions(self: TrajectoryApplication, provider: str) -> list[Subscription]:
        index = self._subscriptions_of(provider)
        return [s for s in (self.repository.get(uuid.UUID(i)) for i in index.subscription_ids)
                if s.is_active]

    def _thin(self: TrajectoryApplication, cloud_event: CloudEvent) -> str:
        """What happened, to which trajectory, and where to read the rest (with the
        provider's own credential): the CloudEvent's attributes with a `dataref`, no data."""
        attributes = cloud_event.attributes.model_dump(mode="json", exclude_none=True)
        attributes.pop("datacontenttype")
        attributes["dataref"] = f"{self.config.public_url}/trajectories/{cloud_event.attributes.subject}"
        return json.dumps(attributes, sort_keys=True, separators=(",", ":"))

    # --- attempts --------------------------------------------------------------------------

    def due_deliveries(self: TrajectoryApplication, now: dt.datetime, limit: int = 20) -> list[DeliveryJob]:
        self.delivery_index.catch_up(self)
        due = sorted((at, i) for i, at in self.delivery_index.due.items() if at <= now)[:limit]
        jobs = []
        for _, delivery_id in due:
            delivery: Delivery = self.repository.get(delivery_id)
            if delivery.state != "pending":
                continue
            secret = self.secrets.get(delivery.subscription_id)
            subscription: Subscription = self.repository.get(delivery.subscription_id)
            if secret is None or not subscription.is_active:
                self.write(lambda d=delivery: self._cancel_delivery(d.id))
                continue
            jobs.append(DeliveryJob(delivery.id, delivery.callback_url, delivery.body.encode(),
                                    secret, delivery.message_id))
        return jobs

    def _cancel_delivery(self: TrajectoryApplication, delivery_id: uuid.UUID) -> None:
        delivery: Delivery = self.repository.get(delivery_id)
        delivery.cancel(self.clock())
        self.save(delivery)

    def record_attempt(self: TrajectoryApplication, delivery_id: uuid.UUID, *, at: dt.datetime,
                       status_code: int | None, error: str | None, duration_ms: int) -> str:
        """Records one attempt; returns the delivery's state after it."""
        def command() -> str:
            delivery: Delivery = self.repository.get(delivery_id)
            try:
                delivery.record_attempt(at, status_code, error, duration_ms, self.config.backoff)
            except DeliveryConflict:  # another worker finished it meanwhile
                return delivery.state
            self.save(delivery)
            return delivery.state

        state = self.write(command)
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


def _subscription_view(s: Subscription) -> dict[str, Any]:
    return {"subscription_id": str(s.id), "provider": s.provider, "callback_url": s.callback_url,
            "event_types": s.event_types, "created_at": s.created_at.isoformat(),
            "state": "active" if s.is_active else "cancelled",
            "cancelled_at": s.cancelled_at.isoformat() if s.cancelled_at else None}


def _delivery_view(d: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": str(d.id), "subscription_id": str(d.subscription_id),
        "message_id": d.message_id, "event_id": d.event_id, "event_type": d.event_type,
        "trajectory_id": str(d.trajectory_id), "state": d.state,
        "created_at": d.created_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "attempts": [a | {"at": a["at"].isoformat()} for a in d.attempts],
    }
