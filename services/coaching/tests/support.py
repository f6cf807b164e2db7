"""Test helpers: an injectable clock, what the trajectory service would publish, and a
way to feed it to the coaching application as the inbox does."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

from contracts.envelope import CloudEvent, envelope, source_urn
from contracts.events import PlacedInJob, ProviderAssigned, TrajectoryOpened
from contracts.topics import TRAJECTORY_EVENTS
from coaching.integration import integration_events

NOW = dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC)
AFTERCARE = "Directe bemiddeling en Nazorg"


class Clock:
    """Today, as the test says."""

    def __init__(self, today: dt.date) -> None:
        self.today = today

    def __call__(self) -> dt.date:
        return self.today

    def set(self, today: dt.date) -> None:
        self.today = today


class Trajectory:
    """One trajectory as the trajectory service publishes it, event by event."""

    def __init__(self, municipality: str = "alkmaar", trajectory_id: uuid.UUID | None = None) -> None:
        self.id = trajectory_id or uuid.uuid4()
        self.municipality = municipality
        self.version = 0

    def _wrap(self, data) -> CloudEvent:
        self.version += 1
        return envelope(data, source=source_urn(self.municipality, "tweespoor-trajectory"),
                        origin=f"{self.id}/{self.version}/0", sequence=self.version, time=NOW)

    def opened(self, on: dt.date = dt.date(2026, 6, 1)) -> CloudEvent:
        return self._wrap(TrajectoryOpened(
            trajectory_id=self.id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
            municipality=self.municipality, programme="focus2move", opened_on=on))

    def assigned(self, provider: str, discipline: str = AFTERCARE,
                 on: dt.date = dt.date(2026, 6, 2)) -> CloudEvent:
        return self._wrap(ProviderAssigned(trajectory_id=self.id, provider=provider,
                                           discipline=discipline, assigned_on=on))

    def placed(self, starts_on: dt.date, employer: str = "Bakkerij De Korenschoof",
               hours: float = 32, contract_type: str = "fixed-term") -> CloudEvent:
        return self._wrap(PlacedInJob(trajectory_id=self.id, municipality=self.municipality,
                                      employer=employer, hours_per_week=hours,
                                      contract_type=contract_type, starts_on=starts_on))


class Feed:
    """Applies cloud events to an application at ever higher offsets, like the inbox."""

    def __init__(self, app, topic: str = TRAJECTORY_EVENTS, partition: int = 0) -> None:
        self.app, self.topic, self.partition = app, topic, partition
        self.offsets = itertools.count()

    def __call__(self, *events: CloudEvent):
        return [self.app.apply(e, self.topic, self.partition, next(self.offsets)) for e in events]


def published(app, after: int | None = None) -> list:
    """The integration events the relay would publish from the store, in order."""
    events = []
    position = after
    while page := app.recorder.select_notifications(position, 500, inclusive_of_start=False):
        for notification in page:
            events += [e for _, e in integration_events(app.mapper.to_domain_event(notification))]
        position = page[-1].id
    return events


def kinds(events) -> list[str]:
    return [type(e).__name__ for e in events]
