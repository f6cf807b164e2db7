"""What a history shows — a referral's or an LBU job offer's: each fact with its valid date
and its recorded time.

The valid date (`on`) is when it happened in the world, by the business's calendar; the
recorded time (`recorded_at`) is when intake stored it, by the real clock (the event's
own timestamp). The entries are ordered by valid date, facts on the same date in the
order they were recorded. The decision on a referral (referred or rejected) is valid on
the referral date: it is a decision about that referral as made that day, whenever it
was recorded. An offer's facts carry their own valid dates (offered, accepted or refused,
the day its destination became unknown, returned), so a return entered late for an
earlier day stands before the timer's fact it was recorded after.

Derived from the stored events, never stored: events of earlier releases (whose decision
carries the day it was recorded) read the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from intake.domain import Referral
from intake.lbu import JobOffer

DECISIONS = (Referral.Accepted, Referral.Rejected)
# What each kind of aggregate calls the fact in its history's entries.
LABELS: dict[type, str] = {Referral: "status", JobOffer: "state"}


def history_of(app: Any, aggregate: Referral | JobOffer) -> list[dict[str, Any]]:
    """The history of a referral or offer as loaded (or being changed) by `app`: its
    stored events up to the first it has pending, and those pending."""
    pending = list(aggregate.pending_events)
    first_pending = pending[0].originator_version if pending else aggregate.version + 1
    stored = list(app.events.get(aggregate.id, lte=first_pending - 1)) if first_pending > 1 else []
    return history(aggregate, [*stored, *pending])


def _valid_on(aggregate: Referral | JobOffer, event: Any, on: dt.date) -> dt.date:
    if isinstance(aggregate, Referral) and isinstance(event, DECISIONS):
        return aggregate.referred_on
    return on


def history(aggregate: Referral | JobOffer, events: Iterable[Any]) -> list[dict[str, Any]]:
    """The history of `aggregate` from its domain events, in order of version. Each event
    that adds to the aggregate's own history gives its entries the event's timestamp;
    replaying keeps this in step with the domain, whatever event it adds later."""
    label = LABELS[type(aggregate)]
    entries: list[tuple[dt.date, dt.datetime, int, str]] = []
    replayed: Any = None
    for event in sorted({e.originator_version: e for e in events}.values(),
                        key=lambda e: e.originator_version):
        before = len(replayed.history) if replayed is not None else 0
        replayed = event.mutate(replayed)
        for fact, on in replayed.history[before:]:
            entries.append((_valid_on(aggregate, event, on), event.timestamp, len(entries), fact))
    if replayed is None or len(entries) != len(aggregate.history):  # cannot be: the same events
        return [{label: f, "on": d.isoformat(), "recorded_at": None} for f, d in aggregate.history]
    return [{label: fact, "on": valid.isoformat(), "recorded_at": recorded.isoformat()}
            for valid, recorded, _, fact in sorted(entries)]
