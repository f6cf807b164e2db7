"""The employment registry: whom the municipality follows, when, and what came back.

Municipalities learn whether someone works from the national employment registry (UWV's
policy administration, reached through Suwinet) and whether they are back on a benefit
from their own benefit administration. The real link needs a government network, so
intake talks to it through a port, `EmploymentRegistry`: a request file out, an answer
file back (`intake.registry_files` is the file-exchange adapter, `intake.simulated_registry`
the registry's side for tests and the demo).

Follow-up points, counted in calendar months from the reference date:
- the LBU unknown-destination cohort, from the refusal: 3, 6 and 12 months;
- placed clients, from the (latest) placement's start: 6, 12 and 24 months.

Plain domain code: no Kafka, HTTP or SQL. No BSN is ever stored here: a request line names
the person by pseudonym and by the referral or offer whose sealed data holds the BSN, so
a kept file is rendered again on demand and erasing the person empties its BSN column.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from eventsourcing.domain import Aggregate, event

REGISTRY_NAMESPACE = uuid.UUID("5b0c2f3e-7d41-4c8a-9e16-a2f4b8c0d7e5")
LBU_COHORT, PLACED_COHORT = "lbu-unknown-destination", "placed"
# point -> (cohort, months after the reference date)
POINTS: dict[str, tuple[str, int]] = {
    "lbu-3-months": (LBU_COHORT, 3), "lbu-6-months": (LBU_COHORT, 6),
    "lbu-12-months": (LBU_COHORT, 12),
    "placement-6-months": (PLACED_COHORT, 6), "placement-12-months": (PLACED_COHORT, 12),
    "placement-24-months": (PLACED_COHORT, 24),
}
BENEFIT_KINDS = ("bijstand", "ioaw", "ioaz", "bbz", "other")


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months later (the month's last day if it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_points(cohort: str, reference_date: dt.date, on: dt.date) -> list[tuple[str, int, dt.date]]:
    """(point, months, the point's date) of a cohort's points reached on or before `on`."""
    return [(point, months, add_months(reference_date, months))
            for point, (c, months) in POINTS.items()
            if c == cohort and add_months(reference_date, months) <= on]


def observation_id(request_id: uuid.UUID, line: int) -> uuid.UUID:
    """One answer line's observations: the same id for its employment and benefit events."""
    return uuid.uuid5(REGISTRY_NAMESPACE, f"observation|{request_id}|{line}")


# --- what crosses the port ---------------------------------------------------------------


@dataclass(frozen=True)
class RequestLine:
    """One person at one point, as the request file asks about them."""

    line: int
    bsn: str = field(repr=False)
    point: str
    reference_date: dt.date
    observe_on: dt.date


@dataclass(frozen=True)
class AnswerLine:
    """One answer, as the answer file gives it (the benefit fields from the municipality's
    own benefit administration)."""

    row: int  # the row of the file (the header is row 1), for the report
    request_id: uuid.UUID
    line: int
    bsn: str = field(repr=False)
    employed: bool
    employer_id: str | None
    hours_per_week: float | None
    period_start: dt.date
    period_end: dt.date
    on_benefit: bool
    benefit_kind: str | None

    def values(self) -> dict[str, Any]:
        """What is kept of the answer: everything but the BSN, in primitives."""
        return {"employed": self.employed, "employer_id": self.employer_id,
                "hours_per_week": self.hours_per_week, "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(), "on_benefit": self.on_benefit,
                "benefit_kind": self.benefit_kind}


@dataclass(frozen=True)
class LineError:
    """What is wrong with one row of a file: never the value itself."""

    row: int
    field: str
    reason: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "line": self.line, "field": self.field, "reason": self.reason}


@dataclass
class ParsedAnswers:
    lines: list[AnswerLine]
    errors: list[LineError]
    rows: int  # data rows read


class EmploymentRegistry(Protocol):
    """The port: intake asks about people at points, the registry answers."""

    def request(self, request_id: uuid.UUID, lines: list[RequestLine]) -> bytes:
        """The request file for these lines."""
        ...

    def answers(self, file: bytes) -> ParsedAnswers:
        """The answer file read: its lines, and what is wrong with which row."""
        ...


# --- the aggregates ------------------------------------------------------------------------


class RegistryRequest(Aggregate):
    """One request file: whom it asked about, and what came back, line by line.

    A line (primitives only, no BSN): line, client_id, source_id (the referral or offer
    holding the sealed person), trajectory_id, offer_id, cohort, point, months_after,
    reference_date, observe_on.
    """

    @event("Built")
    def __init__(self, *, municipality: str, built_on: dt.date, on: dt.date,
                 lines: list[dict[str, Any]]) -> None:
        self.municipality = municipality
        self.built_on = built_on
        self.on = on
        self.lines: dict[int, dict[str, Any]] = {int(x["line"]): dict(x) for x in lines}
        self.answers: dict[int, dict[str, Any]] = {}  # line -> the answer's values
        self.imports: list[dict[str, Any]] = []

    @event("Answered")
    def answer(self, imported_on: dt.date, answers: list[dict[str, Any]]) -> None:
        """Answers to some of the lines (`line` plus `AnswerLine.values()`), all at once."""
        for answer in answers:
            self.answers[int(answer["line"])] = {k: v for k, v in answer.items() if k != "line"}
        self.imports.append({"imported_on": imported_on.isoformat(), "lines": len(answers)})


class FollowUp(Aggregate):
    """The points already asked about for one referral or offer, so each is asked once."""

    @staticmethod
    def create_id(source_id: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(REGISTRY_NAMESPACE, f"follow-up|{source_id}")

    @event("Started")
    def __init__(self, source_id: uuid.UUID) -> None:
        self.requested: dict[str, str] = {}  # "point@reference date" -> request id

    @staticmethod
    def key(point: str, reference_date: dt.date) -> str:
        return f"{point}@{reference_date.isoformat()}"

    @event("Requested")
    def requested_in(self, request_id: uuid.UUID, keys: list[str]) -> None:
        for key in keys:
            self.requested[key] = str(request_id)
