"""What a placement's result at a follow-up point is, and what proves it (issue 15).

Plain code: no Kafka, HTTP or SQL, and no clock. One rule, part of the contract of the
events that carry the evidence: coaching applies it to the plan it keeps (its plan view,
its six-month and end-of-year events) and reporting to its documents (every figure that
says whether placed people still work):

A result at 6, 12 or 24 months after the placement's start is "employed", "not-employed"
or "unknown", with its evidence:

- `registry`: the employment registry's answer for that point (EmploymentObserved);
- `employer`: the employer confirmed the client worked for it on a day in the evidence
  window (EmploymentConfirmedByEmployer, recorded by the coach). An employer saying the
  client no longer works for it says nothing of work elsewhere: not evidence;
- `check-in` / `follow-up`: a contact with the client -- a check-in of the coaching year
  or, after it, a follow-up contact -- held within the evidence window around the point:
  from six weeks before it to two weeks after it;
- `job-loss`: within the coaching year, the coach reported the job lost on or before the
  point and no new job started by then: not employed.

Without any of these the result is "unknown" -- never "employed". A job that was "never
reported as ended" proves nothing: a check-in without contact carries the last known
status, not a fact; and the `employed` of coaching's six-month and end-of-year events is
that same job record (their `result` and `evidence` are this rule), so it is not evidence.

The window. Check-ins fall at weeks 2, 6, 13, 26, 39 and 52: the week-26 check-in (day
182) is due within three days of the six-month point (day 181 to 184) and the week-52 one
(day 364) a day or two before the twelve-month point, while the check-ins before them
(weeks 13 and 39) lie thirteen weeks earlier. Six weeks before the point takes the
check-in scheduled at the point, also when it is held up to six weeks early, and never
the one before it; two weeks after takes it when it is held on time (its due date plus
the default grace of seven days) and still close enough to speak for the point. A later
contact is not evidence for the point: a municipality with a longer grace gets "unknown"
rather than a claim the records do not carry. Within the coaching year, a contact speaks
for the point only when the coach's job record shows no change between the contact and
the point (a loss, or a new job after a loss, in between would make it say something
else); after the year nobody keeps that record, so a follow-up contact in the window
stands for itself.

When several kinds speak, the registry comes first (an administrative record of the point
itself, which an auditor can check), then the employer, then a contact, then the coach's
report of a lost job; within a kind, the one nearest the point (the earlier on a tie).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

POINTS = (6, 12, 24)  # months after the placement's start
BEFORE = dt.timedelta(weeks=6)  # the evidence window: from six weeks before the point ...
AFTER = dt.timedelta(days=14)  # ... to two weeks after it
Result = Literal["employed", "not-employed", "unknown"]
EVIDENCE = ("registry", "employer", "check-in", "follow-up", "job-loss")  # in order of precedence


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later; the month's last day when it is shorter (as coaching
    and the registry count months)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Contact:
    """A contact with the client (or a statement by the employer, or the registry): on
    `on`, the client was or was not in work."""

    on: dt.date
    employed: bool
    kind: str = "check-in"  # "check-in", "follow-up" or "employer"
    same_employer: bool | None = None


@dataclass(frozen=True)
class Observation:
    """The registry's answer for one point (months after the placement)."""

    months: int
    on: dt.date
    employed: bool


@dataclass(frozen=True)
class Placement:
    """What the records hold about one placement and the year of coaching after it."""

    starts_on: dt.date
    coached_until: dt.date | None = None  # the end of the coaching year: the job record holds till then
    contacts: tuple[Contact, ...] = ()  # with contact made only
    losses: tuple[dt.date, ...] = ()  # the first day without the job, as the coach reported
    new_jobs: tuple[tuple[dt.date, bool], ...] = ()  # (start, same employer as the placement)
    observations: tuple[Observation, ...] = ()


@dataclass(frozen=True)
class Evidence:
    kind: str
    on: dt.date


@dataclass(frozen=True)
class Outcome:
    months: int
    point: dt.date
    result: Result
    evidence: Evidence | None = None
    same_employer: bool | None = None  # when employed and the records say so


def outcome_at(placement: Placement, months: int) -> Outcome:
    """The result of `placement` at `months` after its start, with what proves it."""
    point = add_months(placement.starts_on, months)
    lo, hi = point - BEFORE, point + AFTER

    def nearest(candidates: Iterable[Any]) -> Any:
        return min(candidates, key=lambda c: (abs((c.on - point).days), c.on), default=None)

    observed = nearest(o for o in placement.observations if o.months == months)
    if observed is not None:
        return Outcome(months, point, "employed" if observed.employed else "not-employed",
                       Evidence("registry", observed.on))
    for kind in ("employer", "contact"):
        contact = nearest(c for c in placement.contacts
                          if (c.kind == "employer") == (kind == "employer")
                          and lo <= c.on <= hi and _speaks_for(placement, c, point))
        if contact is not None:
            same = (contact.same_employer if contact.kind != "check-in"
                    else _same_employer_on(placement, point))
            return Outcome(months, point, "employed" if contact.employed else "not-employed",
                           Evidence(contact.kind, contact.on), same if contact.employed else None)
    if placement.coached_until is not None and point <= placement.coached_until:
        status, since = _status_on(placement, point)
        if not status and since is not None:
            return Outcome(months, point, "not-employed", Evidence("job-loss", since))
    return Outcome(months, point, "unknown")


def _changes(placement: Placement) -> list[tuple[dt.date, bool]]:
    """The coach's job record as (date, in work from that date), in order: the placement,
    each loss, each new job. A loss and a new job on one day: out, then in again."""
    return sorted([(placement.starts_on, True), *((d, False) for d in placement.losses),
                   *((d, True) for d, _ in placement.new_jobs)], key=lambda c: (c[0], c[1]))


def _status_on(placement: Placement, day: dt.date) -> tuple[bool, dt.date | None]:
    """In work on `day` by the coach's record, and since when it was last lost (if not)."""
    status, since = False, None
    for on, working in _changes(placement):
        if on > day:
            break
        if working != status or not working:
            status, since = working, on
    return status, (None if status else since)


def _speaks_for(placement: Placement, contact: Contact, point: dt.date) -> bool:
    """Whether a contact says something about the point: within the coaching year, the
    record agrees with it on its day and does not change between it and the point."""
    until = placement.coached_until
    if until is None:
        return True
    first, last = min(contact.on, point), min(max(contact.on, point), until)
    if contact.on <= until and _status_on(placement, contact.on)[0] != contact.employed:
        return False
    at_first = _status_on(placement, min(first, until))[0]
    return all(working == at_first for on, working in _changes(placement) if first < on <= last)


def _same_employer_on(placement: Placement, day: dt.date) -> bool | None:
    same: bool | None = True
    for start, same_employer in sorted(placement.new_jobs):
        if start <= day:
            same = same_employer
    return same
