"""What a referral's history shows: each fact with its valid date and its recorded time.

The valid date (`on`) is when it happened in the world, by the business's calendar; the
recorded time (`recorded_at`) is when intake stored it, by the real clock (the event's
own timestamp). The entries are ordered by valid date, facts on the same date in the
order they were recorded. The decision on a referral (referred or rejected) is valid on
the referral date: it is a decision about that referral as made that day, whenever it
was recorded.

Derived from the stored events, never stored: events of earlier releases (whose decision
carries the day it was recorded) read the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from intake.domain import Referral

DECISIONS = (Referral.Accepted, Referral.Rejected)


def history_of(app: Any, referral: Referral) -> list[dict[str, Any]]:
    """The history of a referral as loaded (or being changed) by `app`: its stored events
    up to the first it has pending, and those pending."""
    pending = list(referral.pending_events)
    first_pending = pending[0].originator_version if pending else referral.version + 1
    stored = list(app.events.get(referral.id, lte=first_pending - 1)) if first_pending > 1 else []
    return referral_history(referral, [*stored, *pending])


def referral_history(referral: Referral, events: Iterable[Any]) -> list[dict[str, Any]]:
    """The history of `referral` from its domain events, in order of version. Each event
    that adds to the aggregate's own history gives its entries the event's timestamp;
    replaying keeps this in step with the domain, whatever event it adds later."""
    entries: list[tuple[dt.date, dt.datetime, int, str]] = []
    replayed: Referral | None = None
    for event in sorted({e.originator_version: e for e in events}.values(),
                        key=lambda e: e.originator_version):
        before = len(replayed.history) if replayed is not None else 0
        replayed = event.mutate(replayed)
        for status, on in replayed.history[before:]:
            valid = referral.referred_on if isinstance(event, DECISIONS) else on
            entries.append((valid, event.timestamp, len(entries), status))
    if replayed is None or len(entries) != len(referral.history):  # cannot be: the same events
        return [{"status": s, "on": d.isoformat(), "recorded_at": None} for s, d in referral.history]
    return [{"status": status, "on": valid.isoformat(), "recorded_at": recorded.isoformat()}
            for valid, recorded, _, status in sorted(entries)]
