"""Who is still employed, month by month since the placement, per programme (issue 15).

Plain code: no Kafka, HTTP or SQL, and no clock: the date the figures are asked for is
passed in. The dashboard draws it as a survival curve; `/figures` answers it as
`coaching.survival`.

For each month m = 1..24 after a placement's start, the placements whose month-m point
(`outcomes.add_months(start, m)`) has passed by `today` have *reached* m, and each is
employed, not employed or unknown at that point by the one evidence rule of
`reporting.outcomes` (`outcome_at`): the registry's answer for that month, the employer,
a check-in or follow-up contact from six weeks before the point to two weeks after it, or
a job loss the coach reported -- otherwise unknown. So, per month,
`employed + not_employed + unknown = reached`.

Months between evidence points are not filled in. Each month is judged by its own
evidence window and nothing is carried forward from the last contact: "not known to have
left" is not "employed". With check-ins at weeks 2, 6, 13, 26, 39 and 52 the windows of
months 5, 8 and 11 hold none, and after the coaching year only a follow-up contact or a
registry answer (asked at 6, 12 and 24 months) speaks, so many months are unknown: that
is what the records carry. The curve is therefore not a Kaplan-Meier estimate and need
not fall month by month; and since only the placements that reached a month count in it,
the later months describe the earlier placements. Beside `share_employed_of_known`
(employed over employed + not employed) it gives `share_employed_of_reached` (employed
over all that reached the month) and `share_unknown`, so the unknown stay in view.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from reporting.outcomes import Placement, outcome_at, placement_of

MONTHS = range(1, 25)  # months after the placement's start


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def survival(placements: Iterable[Placement], today: dt.date) -> list[dict[str, Any]]:
    """One row per month 1..24: the placements that reached it by `today`, employed, not
    employed or unknown at it, and the shares (None where there is nothing to divide by)."""
    placements = list(placements)
    rows = []
    for month in MONTHS:
        results = Counter(o.result for o in (outcome_at(p, month) for p in placements) if o.point <= today)
        reached, employed, not_employed = sum(results.values()), results["employed"], results["not-employed"]
        rows.append({
            "month": month, "reached": reached, "employed": employed, "not_employed": not_employed,
            "unknown": results["unknown"],
            "share_employed_of_known": _share(employed, employed + not_employed),
            "share_employed_of_reached": _share(employed, reached),
            "share_unknown": _share(results["unknown"], reached),
        })
    return rows


def survival_by_programme(docs: Iterable[Mapping[str, Any]], today: dt.date) -> dict[str, list[dict[str, Any]]]:
    """`survival` per programme, over the trajectory documents given (already narrowed by
    the figures' filters) that hold a placement; only programmes with one."""
    per_programme: dict[str, list[Placement]] = {}
    for doc in docs:
        placement = placement_of(doc)
        if placement is not None:
            per_programme.setdefault(doc.get("programme") or "", []).append(placement)
    return {programme: survival(placements, today) for programme, placements in sorted(per_programme.items())}
