"""Contracts and capacity: who may take on which discipline, for which municipalities,
in which period, and how many trajectories at once.

Plain domain code: no Kafka, HTTP or SQL. Reference data is event-sourced like
everything else, so a changed volume or a new contract is an audited fact with who made
it and why; the data file only seeds the first events.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate, event

NAMESPACE = uuid.UUID("3d0e4a8b-6f21-4c9a-b1e7-58c2d9f0a614")

Refusal = str  # "outside-contract-period" | "no-contract-for-municipality"


@dataclass(frozen=True)
class Admission:
    """A waiting trajectory's turn: the provider it got (or why it got none), and when."""

    trajectory_id: uuid.UUID
    outcome: str
    on: dt.date


class ContractError(Exception):
    """A change to reference data that cannot be right; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class Lot:
    """What assignment needs to know of one contract."""

    provider: str
    municipalities: tuple[str, ...]
    starts_on: dt.date
    ends_on: dt.date
    places: int


def available(lots: Sequence[Lot], municipality: str, on: dt.date) -> tuple[list[Lot], Refusal | None]:
    """The lots that may take on a trajectory of `municipality` on `on`, or why none may."""
    covering = [lot for lot in lots if municipality in lot.municipalities]
    if not covering:
        return [], "no-contract-for-municipality"
    valid = [lot for lot in covering if lot.starts_on <= on <= lot.ends_on]
    if not valid:
        return [], "outside-contract-period"
    return valid, None


class Register(Aggregate):
    """The tender as a whole: its budgets, and which contracts exist per discipline.
    One per store; seeded from the data file on the first start."""

    @staticmethod
    def create_id(**_: Any) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, "register")

    @event("Seeded")
    def __init__(self, *, slug: str, title: str, source: str, budgets: list[dict[str, Any]],
                 by: str) -> None:
        self.slug, self.title, self.source = slug, title, source
        self.budgets = budgets
        self.programmes: list[str] = []
        self.lots: dict[str, list[str]] = {}  # "programme|discipline" -> contract ids

    @event("ProgrammeRegistered")
    def register_programme(self, slug: str) -> None:
        self.programmes.append(slug)

    @event("ContractRegistered")
    def register_contract(self, contract_id: uuid.UUID, programme: str, discipline: str) -> None:
        self.lots.setdefault(f"{programme}|{discipline}", []).append(str(contract_id))

    def contracts_for(self, programme: str, discipline: str) -> list[uuid.UUID]:
        return [uuid.UUID(c) for c in self.lots.get(f"{programme}|{discipline}", [])]

    def budget_of(self, programme: str) -> dict[str, Any] | None:
        return next((b for b in self.budgets if programme in b["programmes"]), None)


class Programme(Aggregate):
    """A programme of the tender (social activation, re-integration, Focus2Move)."""

    @staticmethod
    def create_id(slug: str, **_: Any) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"programme|{slug}")

    @event("Established")
    def __init__(self, slug: str, *, name: str, starts_on: dt.date, ends_on: dt.date,
                 yearly_volume: int, municipalities: list[str], disciplines: list[str],
                 entry_discipline: str, reopen_discipline: str,
                 obstacle_disciplines: dict[str, str], employer: str | None, by: str) -> None:
        self.slug, self.name = slug, name
        self.starts_on, self.ends_on = starts_on, ends_on
        self.yearly_volume = yearly_volume
        self.municipalities = list(municipalities)
        self.disciplines = list(disciplines)
        self.entry_discipline = entry_discipline
        self.reopen_discipline = reopen_discipline
        self.obstacle_disciplines = dict(obstacle_disciplines)
        self.employer = employer
        self.changes: list[dict[str, Any]] = []

    def discipline_for(self, obstacle_kind: str) -> str | None:
        return self.obstacle_disciplines.get(obstacle_kind)

    def change_volume(self, yearly_volume: int, on: dt.date, reason: str, by: str) -> None:
        if yearly_volume < 0:
            raise ContractError("yearly_volume", "must not be negative")
        self._volume_changed(yearly_volume, on, reason, by)

    @event("VolumeChanged")
    def _volume_changed(self, yearly_volume: int, on: dt.date, reason: str, by: str) -> None:
        self.changes.append({"change": "yearly_volume", "from": self.yearly_volume,
                             "to": yearly_volume, "on": on.isoformat(), "reason": reason, "by": by})
        self.yearly_volume = yearly_volume


class ProviderContract(Aggregate):
    """One lot: a provider's contract for one discipline of one programme."""

    @staticmethod
    def create_id(provider: str, programme: str, discipline: str, **_: Any) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"contract|{provider}|{programme}|{discipline}")

    @event("Awarded")
    def __init__(self, provider: str, programme: str, discipline: str, *,
                 municipalities: list[str], starts_on: dt.date, ends_on: dt.date, places: int,
                 tariff_eur: int, reason: str, by: str) -> None:
        self.provider, self.programme, self.discipline = provider, programme, discipline
        self.municipalities = list(municipalities)
        self.starts_on, self.ends_on = starts_on, ends_on
        self.places = places
        self.tariff_eur = tariff_eur
        self.changes: list[dict[str, Any]] = [{"change": "awarded", "on": starts_on.isoformat(),
                                               "reason": reason, "by": by}]

    @property
    def lot(self) -> Lot:
        return Lot(self.provider, tuple(self.municipalities), self.starts_on, self.ends_on,
                   self.places)

    def change_places(self, places: int, on: dt.date, reason: str, by: str) -> None:
        if places < 0:
            raise ContractError("places", "must not be negative")
        self._places_changed(places, on, reason, by)

    @event("PlacesChanged")
    def _places_changed(self, places: int, on: dt.date, reason: str, by: str) -> None:
        self.changes.append({"change": "places", "from": self.places, "to": places,
                             "on": on.isoformat(), "reason": reason, "by": by})
        self.places = places

    def extend(self, ends_on: dt.date, reason: str, by: str) -> None:
        if ends_on <= self.ends_on:
            raise ContractError("ends_on", "must be later than the current end of the contract")
        self._extended(ends_on, reason, by)

    @event("Extended")
    def _extended(self, ends_on: dt.date, reason: str, by: str) -> None:
        self.changes.append({"change": "ends_on", "from": self.ends_on.isoformat(),
                             "to": ends_on.isoformat(), "on": self.ends_on.isoformat(),
                             "reason": reason, "by": by})
        self.ends_on = ends_on


def validate_award(starts_on: dt.date, ends_on: dt.date, places: int, tariff_eur: int) -> None:
    if ends_on < starts_on:
        raise ContractError("ends_on", "must not be before starts_on")
    if places < 0:
        raise ContractError("places", "must not be negative")
    if tariff_eur < 0:
        raise ContractError("tariff_eur", "must not be negative")


class DisciplineCapacity(Aggregate):
    """One discipline of one programme: which provider holds which trajectories now, and
    which trajectories wait, in order (of the date they began to wait, then of arrival). Every assignment decision for the discipline goes
    through this one aggregate, so a place is never handed out twice (a concurrent
    decision loses on the aggregate's version and is made again)."""

    @staticmethod
    def create_id(programme: str, discipline: str) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"capacity|{programme}|{discipline}")

    @event("Opened")
    def __init__(self, programme: str, discipline: str) -> None:
        self.programme, self.discipline = programme, discipline
        self.holding: dict[str, list[str]] = {}  # provider -> trajectory ids
        self.waiting: list[dict[str, str]] = []  # {trajectory_id, municipality, since}, in order
        # provider -> municipality -> trajectories ever assigned (what the budget commits)
        self.assigned: dict[str, dict[str, int]] = {}

    def in_use(self, provider: str) -> int:
        return len(self.holding.get(provider, ()))

    def holder_of(self, trajectory_id: uuid.UUID) -> str | None:
        return next((p for p, held in self.holding.items() if str(trajectory_id) in held), None)

    def is_waiting(self, trajectory_id: uuid.UUID) -> bool:
        return any(w["trajectory_id"] == str(trajectory_id) for w in self.waiting)

    def decide(self, trajectory_id: uuid.UUID, municipality: str, on: dt.date,
               lots: Sequence[Lot]) -> str | None:
        """Assigns the trajectory to a provider with a free place (returned), or puts it
        on the waitlist (None). `lots` are those that may take it on that date."""
        if self.holder_of(trajectory_id) or self.is_waiting(trajectory_id):
            raise ContractError("trajectory_id", "already holds or awaits this discipline")
        provider = self._pick(lots)
        if provider is None:
            self._waitlisted(trajectory_id, municipality, on)
        else:
            self._assigned(trajectory_id, provider, municipality, on)
        return provider

    def release(self, trajectory_id: uuid.UUID, provider: str, on: dt.date) -> bool:
        if str(trajectory_id) not in self.holding.get(provider, ()):
            return False
        self._released(trajectory_id, provider, on)
        return True

    def withdraw(self, trajectory_id: uuid.UUID, reason: str) -> bool:
        """Takes a trajectory off the waitlist without assigning it."""
        if not self.is_waiting(trajectory_id):
            return False
        self._left(trajectory_id, reason)
        return True

    def admit(self, on: dt.date, lots_for: Callable[[str, dt.date], tuple[list[Lot], Refusal | None]],
              wants: Callable[[uuid.UUID], bool]) -> tuple[list[Admission], list[Admission]]:
        """Hands free places to the waitlist in order, from `on` (or from when an entry
        began to wait, if later). Returns who was assigned to whom, and who can no longer
        be assigned at all (no contract then: refused). Entries the trajectory no longer
        `wants` (it ended meanwhile) leave the list."""
        admitted: list[Admission] = []
        refused: list[Admission] = []
        for entry in list(self.waiting):
            trajectory_id = uuid.UUID(entry["trajectory_id"])
            when = max(on, dt.date.fromisoformat(entry["since"]))
            if not wants(trajectory_id):
                self._left(trajectory_id, "no-longer-wanted")
                continue
            lots, refusal = lots_for(entry["municipality"], when)
            if refusal is not None:
                self._left(trajectory_id, refusal)
                refused.append(Admission(trajectory_id, refusal, when))
            elif (provider := self._pick(lots)) is not None:
                self._assigned(trajectory_id, provider, entry["municipality"], when)
                admitted.append(Admission(trajectory_id, provider, when))
        return admitted, refused

    def _pick(self, lots: Sequence[Lot]) -> str | None:
        """The lot with the most free places; on a tie the one given fewest so far (so the
        holders share the work), then by name, so the choice is reproducible."""
        free = [(lot.places - self.in_use(lot.provider), lot.provider) for lot in lots]
        candidates = [(-room, sum(self.assigned.get(p, {}).values()), p) for room, p in free if room > 0]
        return min(candidates)[2] if candidates else None

    @event("Assigned")
    def _assigned(self, trajectory_id: uuid.UUID, provider: str, municipality: str, on: dt.date) -> None:
        self.waiting = [w for w in self.waiting if w["trajectory_id"] != str(trajectory_id)]
        self.holding.setdefault(provider, []).append(str(trajectory_id))
        counts = self.assigned.setdefault(provider, {})
        counts[municipality] = counts.get(municipality, 0) + 1

    @event("Waitlisted")
    def _waitlisted(self, trajectory_id: uuid.UUID, municipality: str, on: dt.date) -> None:
        # In order of the date they began to wait, then of arrival: referrals reach the
        # service through several partitions, so arrival alone is no fair order.
        entry = {"trajectory_id": str(trajectory_id), "municipality": municipality, "since": on.isoformat()}
        later = next((i for i, w in enumerate(self.waiting) if w["since"] > entry["since"]), len(self.waiting))
        self.waiting.insert(later, entry)

    @event("Released")
    def _released(self, trajectory_id: uuid.UUID, provider: str, on: dt.date) -> None:
        self.holding[provider].remove(str(trajectory_id))

    @event("Left")
    def _left(self, trajectory_id: uuid.UUID, reason: str) -> None:
        self.waiting = [w for w in self.waiting if w["trajectory_id"] != str(trajectory_id)]
