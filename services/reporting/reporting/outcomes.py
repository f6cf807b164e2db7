"""Outcomes read from reporting's documents: a placement's evidence as the projection
stored it (the rule itself is `contracts.outcomes`), and where the unknown-destination
cohort went."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from contracts.outcomes import (  # noqa: F401  (the rule's names, as reporting uses them)
    AFTER, BEFORE, EVIDENCE, POINTS, Contact, Evidence, Observation, Outcome, Placement,
    Result, add_months, outcome_at,
)


# --- from a reporting document -------------------------------------------------------


def placement_of(doc: Mapping[str, Any]) -> Placement | None:
    """The placement of a trajectory's document with its evidence, or None when it has
    none. The document's fields are set by reporting's projection (documents.py)."""
    coaching = doc.get("coaching", {})
    start = coaching.get("job_starts_on") or (doc.get("placement") or {}).get("starts_on")
    if not start:
        return None
    contacts = [Contact(_date(c["held_on"]), c["still_employed"], "check-in")
                for c in coaching.get("check_ins", {}).values() if c.get("contact_made")]
    contacts += [Contact(_date(on), bool(f["employed"]), "follow-up", f.get("same_employer"))
                 for on, f in coaching.get("follow_ups", {}).items()
                 if f.get("contact_made") and f.get("employed") is not None]
    contacts += [Contact(_date(on), True, "employer", bool(c["same_employer"]))
                 for on, c in coaching.get("employer_confirmations", {}).items() if c.get("employed")]
    # The registry's answers about this placement (a trajectory placed again is asked
    # about its latest placement: an answer about an earlier one says nothing of this).
    observations = [Observation(o["months_after"], _date(o["observed_on"]), o["employed"])
                    for answers in doc.get("registry", {}).values() for o in answers.values()
                    if o.get("cohort") == "placed" and o.get("employed") is not None
                    and o.get("reference_date", start) == start]
    ends = coaching.get("ends_on")
    return Placement(
        starts_on=_date(start),
        coached_until=_date(ends) if ends and coaching.get("plan_id") else None,
        contacts=tuple(sorted(contacts, key=lambda c: (c.on, c.kind))),
        losses=tuple(sorted(_date(d) for d in coaching.get("jobs_lost", {}))),
        new_jobs=tuple(sorted((_date(d), bool(s)) for d, s in coaching.get("placed_again", {}).items())),
        observations=tuple(sorted(observations, key=lambda o: (o.months, o.on, o.employed))),
    )


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


# --- where the unknown-destination cohort went ----------------------------------------

LBU_POINTS = (3, 6, 12)  # months after the refusal
Destination = Literal["working", "back-on-benefit", "still-unknown"]


@dataclass(frozen=True)
class Whereabouts:
    point: dt.date
    destination: Destination
    evidence: str | None  # "registry", "benefit-administration", "returned", or None: no answer


def destination_at(offer: Mapping[str, Any], months: int) -> Whereabouts | None:
    """Where one refuser of the LBU cohort (an offer's `lbu` block) was `months` after the
    refusal: working (the registry says so), back on a benefit (the benefit administration
    says so, or they came back for one by then), or still unknown -- also when the
    registry and the benefit administration both answer "no": nobody knows where they
    went. Working comes first: someone in work with a supplementary benefit works. None
    for an offer outside the cohort."""
    lbu = offer.get("lbu", {})
    if not lbu.get("unknown_since") or not lbu.get("refused_on"):
        return None
    point = add_months(_date(lbu["refused_on"]), months)
    answers = [answer for per_point in offer.get("registry", {}).values() for answer in per_point.values()
               if answer.get("months_after") == months and answer.get("cohort") == "lbu-unknown-destination"]
    if any(a.get("employed") for a in answers):
        return Whereabouts(point, "working", "registry")
    if any(a.get("on_benefit") for a in answers):
        return Whereabouts(point, "back-on-benefit", "benefit-administration")
    if lbu.get("returned_on") and _date(lbu["returned_on"]) <= point:
        return Whereabouts(point, "back-on-benefit", "returned")
    return Whereabouts(point, "still-unknown", "registry" if answers else None)
