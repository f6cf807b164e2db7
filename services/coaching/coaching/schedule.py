"""The calendar of a coaching year: check-ins in weeks from the job's start, the six-month
point and the end, in calendar months.

Plain date arithmetic, no infrastructure. The dates are worked out once, when a plan
starts, and recorded in its first event: changing a municipality's schedule later does
not move the dates of plans already running, and an audit replays what was promised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.outcomes import add_months  # the one way months are counted, as the registry does

DEFAULT_CHECK_IN_WEEKS = (2, 6, 13, 26, 39, 52)
DEFAULT_GRACE_DAYS = 7
COACHING_MONTHS = 12
SIX_MONTHS = 6


def check_weeks(weeks: Sequence[int]) -> tuple[int, ...]:
    """A valid check-in schedule: at least one, strictly increasing, within the year."""
    weeks = tuple(weeks)
    if not weeks:
        raise ValueError("a coaching schedule needs at least one check-in")
    if any(not 1 <= w <= 52 for w in weeks):
        raise ValueError("check-in weeks must lie between 1 and 52")
    if any(a >= b for a, b in zip(weeks, weeks[1:])):
        raise ValueError("check-in weeks must be strictly increasing")
    return weeks


@dataclass(frozen=True)
class Schedule:
    """When the check-ins of one plan are due, when ESF's six-month point falls, and when
    the coaching year ends."""

    check_ins_due: tuple[dt.date, ...]
    six_month_on: dt.date
    ends_on: dt.date


def schedule_for(job_starts_on: dt.date, weeks: Sequence[int]) -> Schedule:
    return Schedule(
        check_ins_due=tuple(job_starts_on + dt.timedelta(weeks=w) for w in check_weeks(weeks)),
        six_month_on=add_months(job_starts_on, SIX_MONTHS),
        ends_on=add_months(job_starts_on, COACHING_MONTHS),
    )
