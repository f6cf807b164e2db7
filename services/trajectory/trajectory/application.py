"""The trajectory service's application: the event store, what it consumes from Kafka,
and the use cases (`trajectory.usecases`) wired together.

The application owns the store and the inbox policy (`on_event`); each use case is a
collaborator given what it needs: the store, the write lock's command runner, a clock.
The methods below are the service's surface for its adapters (API, webhook sender,
desk loop) and tests, each handing on to the use case that does it.

Writes run under one lock per process and again on a version conflict with another
process, by the rule every service follows (`contracts.commands`).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eventsourcing.application import ProcessingEvent

from contracts.access import Principal
from contracts.commands import retry_on_conflict
from contracts.envelope import Attributes, CloudEvent
from contracts.events import ClientReferred, Event, ReferralWithdrawn, TrajectoryReopenRequested
from contracts.idempotency import Answer, RequestKey
from contracts.service import Outcome, ServiceApplication
from trajectory import provider_reports
from trajectory.contracting import DisciplineCapacity, Lot, Programme, ProviderContract, Register
from trajectory.integration import integration_events
from trajectory.subscriptions import Backoff
from trajectory.tables import webhook_secrets
from trajectory.tender import TenderData, load
from trajectory.usecases.desk import BATCH, AssignmentDesk
from trajectory.usecases.notifications import (
    DISPATCH_BATCH, Attempts, DeliveryJob, Dispatcher, DueDeliveries, SecretStore, Subscriptions,
)
from trajectory.usecases.progress import ProviderReports
from trajectory.usecases.reading import TrajectoryReads
from trajectory.usecases.reference import ReferenceData
from trajectory.usecases.referrals import Referrals

__all__ = ["TrajectoryApplication", "TrajectoryConfig", "RequestKey", "integration_events"]

T = TypeVar("T")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class TrajectoryConfig:
    public_url: str = "http://127.0.0.1:8002"  # where providers fetch what a notification names
    backoff: Backoff = field(default_factory=Backoff)
    allow_http_callbacks: bool = False  # plain http only for development and tests


class TrajectoryApplication(ServiceApplication):
    """Opens a trajectory for every referral, assigns providers within their contracts, and
    follows the trajectory to placement through what the providers report."""

    name = "trajectory"
    group = "trajectory"
    consumes = (ClientReferred, ReferralWithdrawn, TrajectoryReopenRequested)
    # Every assignment in a discipline is an event on its capacity: load from a snapshot.
    snapshotting_intervals = {DisciplineCapacity: 100}

    def __init__(self, env: dict[str, str] | None = None, *, tender: TenderData | None = None,
                 clock: Callable[[], dt.datetime] = utc_now,
                 config: TrajectoryConfig | None = None, secrets: SecretStore | None = None,
                 calendar: Callable[[], dt.date] | None = None) -> None:
        super().__init__(env)
        self.clock = clock  # real time: webhook deliveries, their retries and signatures
        self.calendar = calendar  # the business date (the installation's clock), if not clock's
        self.config = config or TrajectoryConfig()
        self.writes = threading.RLock()  # the desk, the webhooks and requests write the same trajectories
        self.secrets = secrets or webhook_secrets(self.recorder)
        write = functools.partial(retry_on_conflict, what="trajectory", lock=self.writes)
        self.reference = ReferenceData(self, write)
        self.referrals = Referrals(self, self.reference)
        self.reports = ProviderReports(self, self.reference, self.today, write)
        self.reads = TrajectoryReads(self, self.reference)
        self.desk = AssignmentDesk(self, self.reference, self.writes)
        due = DueDeliveries(self)
        self.subscribing = Subscriptions(self, self.secrets, due, clock=clock, write=write,
                                          allow_http_callbacks=self.config.allow_http_callbacks)
        self.dispatcher = Dispatcher(self, self.subscribing, clock=clock, lock=self.writes,
                                     public_url=self.config.public_url,
                                     recipients=lambda e: self._recipients(e))  # through here: tests count
        self.attempts = Attempts(self, self.secrets, due, clock=clock, backoff=self.config.backoff,
                                 write=write)
        self.seed(tender or load())

    def today(self) -> dt.date:
        """The business date: the installation's clock when wired (`main.build()`)."""
        return self.calendar() if self.calendar is not None else self.clock().date()

    def write(self, command: Callable[[], T], what: str = "trajectory") -> T:
        """Runs a command under the write lock; on a version conflict with another process
        it runs again on fresh state (the command reloads what it changes), and answers
        Busy if it keeps losing (`contracts.commands`)."""
        return retry_on_conflict(command, what=what, lock=self.writes)

    # --- what the service consumes ------------------------------------------------------

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        with self.writes:  # the desk and the webhooks write the same trajectories
            return super().apply(cloud_event, topic, partition, offset)

    def on_event(self, event: Event, attributes: Attributes,
                 processing_event: ProcessingEvent[uuid.UUID]) -> None:
        if isinstance(event, ClientReferred):
            changed = self.referrals.open(event)
        elif isinstance(event, ReferralWithdrawn):
            changed = self.referrals.close_withdrawn(event)
        elif isinstance(event, TrajectoryReopenRequested):
            changed = self.referrals.reopen(event)
        else:
            changed = None
        if changed is not None:
            processing_event.collect_events(changed)

    # --- what providers report, and reading trajectories -----------------------------------

    def report(self, provider: str, trajectory_id: uuid.UUID, report: provider_reports.Report,
               keyed: RequestKey) -> Answer:
        return self.reports.report(provider, trajectory_id, report, keyed)

    def trajectory(self, trajectory_id: uuid.UUID, caller: Principal | None = None,
                   as_of: dt.datetime | None = None) -> dict[str, Any]:
        return self.reads.trajectory(trajectory_id, caller, as_of)

    def history(self, trajectory_id: uuid.UUID, caller: Principal | None = None) -> list[dict[str, Any]]:
        return self.reads.history(trajectory_id, caller)

    def caseload(self, provider: str) -> list[dict[str, Any]]:
        return self.reads.caseload(provider)

    # --- the tender's reference data -------------------------------------------------------

    def seed(self, tender: TenderData) -> bool:
        return self.reference.seed(tender)

    def register(self) -> Register:
        return self.reference.register()

    def reference_streams(self) -> list[uuid.UUID]:
        return self.reference.reference_streams()

    def programme(self, slug: str) -> Programme:
        return self.reference.programme(slug)

    def lots(self, programme: str, discipline: str) -> list[Lot]:
        return self.reference.lots(programme, discipline)

    def lots_on(self, programme: str, discipline: str) -> Callable[[str, dt.date], tuple[list[Lot], str | None]]:
        return self.reference.lots_on(programme, discipline)

    def capacity(self, programme: str, discipline: str) -> DisciplineCapacity:
        return self.reference.capacity(programme, discipline)

    def _contract(self, contract_id: uuid.UUID) -> ProviderContract:
        return self.reference.contract(contract_id)

    def programmes_view(self) -> dict[str, Any]:
        return self.reference.programmes_view()

    def contracts_view(self, caller: Principal) -> list[dict[str, Any]]:
        return self.reference.contracts_view(caller)

    def contract_view(self, contract_id: uuid.UUID, caller: Principal) -> dict[str, Any]:
        return self.reference.contract_view(contract_id, caller)

    def capacity_view(self, caller: Principal) -> list[dict[str, Any]]:
        return self.reference.capacity_view(caller)

    def award_contract(self, **award: Any) -> dict[str, Any]:
        return self.reference.award_contract(**award)

    def change_places(self, contract_id: uuid.UUID, **change: Any) -> dict[str, Any]:
        return self.reference.change_places(contract_id, **change)

    def extend_contract(self, contract_id: uuid.UUID, **change: Any) -> dict[str, Any]:
        return self.reference.extend_contract(contract_id, **change)

    def change_volume(self, slug: str, **change: Any) -> dict[str, Any]:
        return self.reference.change_volume(slug, **change)

    # --- the assignment desk ----------------------------------------------------------------

    def run_desk(self, limit: int = BATCH) -> int:
        return self.desk.run(limit)

    # --- the webhooks out -------------------------------------------------------------------

    def subscribe(self, provider: str, **subscription: Any) -> dict[str, Any]:
        return self.subscribing.subscribe(provider, **subscription)

    def subscriptions(self, provider: str) -> list[dict[str, Any]]:
        return self.subscribing.subscriptions(provider)

    def subscription(self, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return self.subscribing.subscription(subscription_id, provider)

    def cancel_subscription(self, subscription_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return self.subscribing.cancel(subscription_id, provider)

    def deliveries(self, subscription_id: uuid.UUID, provider: str,
                   state: str | None = None) -> list[dict[str, Any]]:
        return self.subscribing.deliveries(subscription_id, provider, state)

    def delivery(self, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return self.subscribing.delivery(delivery_id, provider)

    def retry_delivery(self, delivery_id: uuid.UUID, provider: str) -> dict[str, Any]:
        return self.subscribing.retry_delivery(delivery_id, provider)

    def dispatch(self, limit: int = DISPATCH_BATCH) -> int:
        return self.dispatcher.run(limit)

    def _recipients(self, e: Any) -> list[str]:
        return self.dispatcher.recipients(e)

    def due_deliveries(self, now: dt.datetime, limit: int = 20) -> list[DeliveryJob]:
        return self.attempts.due_deliveries(now, limit)

    def record_attempt(self, delivery_id: uuid.UUID, **attempt: Any) -> str:
        return self.attempts.record_attempt(delivery_id, **attempt)
