"""The figures people steer and account by, computed from the read-model documents.

Plain code: no SQL, no HTTP. Every figure can be narrowed to municipalities, a
programme, a provider, a discipline and a period (on the referral date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.clock import installation_clock
from reporting.documents import Doc
from reporting.outcomes import EVIDENCE, LBU_POINTS, POINTS, Outcome, destination_at, outcome_at, placement_of
from reporting.survival import survival_by_programme

PROGRAMMES = ("social-activation", "reintegration", "focus2move")


@dataclass(frozen=True)
class Filters:
    programme: str | None = None
    provider: str | None = None
    discipline: str | None = None
    start: dt.date | None = None  # referral date on or after
    end: dt.date | None = None  # referral date on or before

    def admits(self, doc: Doc) -> bool:
        if self.programme and doc.get("programme") != self.programme:
            return False
        assignments = doc.get("assignments", {})
        if self.discipline and self.discipline not in assignments:
            return False
        if self.provider and not any(
            a["provider"] == self.provider and (not self.discipline or d == self.discipline)
            for d, a in assignments.items()
        ):
            return False
        day = doc.get("referred_on") or doc.get("referral", {}).get("rejected_on") or doc.get("opened_on")
        if (self.start or self.end) and not day:
            return False
        if self.start and day < self.start.isoformat():
            return False
        return not (self.end and day > self.end.isoformat())


def _days(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    return (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days


def _median(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


def outcome(doc: Doc) -> str:
    """Where an opened trajectory stands: "open", "placed" (it ended in a regular job) or
    "closed" (it ended otherwise) -- exactly one, so that the three add up to the
    trajectories opened. A placement arrives as PlacedInJob and then TrajectoryClosed with
    reason "placed": it is placed, once, not closed too. A placed trajectory that was
    reopened and then closed for another reason counts as closed."""
    closing = doc.get("closed")
    if closing and closing.get("reason") != "placed":
        return "closed"
    if doc.get("placement") or closing:
        return "placed"
    return "open"


def trajectory_figures(docs: list[Doc], filters: Filters = Filters()) -> dict[str, Any]:
    docs = [d for d in docs if filters.admits(d)]
    referred = [d for d in docs if d.get("referral", {}).get("status") != "rejected"
                and (d.get("referred_on") or d.get("opened_on"))]
    rejected = [d for d in docs if d.get("referral", {}).get("status") == "rejected"]
    opened = [d for d in docs if d.get("opened_on")]
    # Each opened trajectory is in one of three outcomes: opened = open + placed + closed.
    placed = [d for d in opened if outcome(d) == "placed"]
    closed = [d for d in opened if outcome(d) == "closed"]
    open_ = [d for d in opened if outcome(d) == "open"]
    waiting = [d for d in opened if _waiting_for(d)]
    to_contract = [x for d in opened if (x := _days(d.get("referred_on"), d.get("contract", {}).get("starts_on"))) is not None]
    to_placement = [x for d in placed if (x := _days(d.get("referred_on"), d["placement"]["starts_on"])) is not None]
    reasons = Counter(r for d in rejected for r in d["referral"].get("reasons", []))
    return {
        "referrals": len(referred) + len(rejected),
        "referred": len(referred),
        "rejected": len(rejected),
        "rejections_by_reason": dict(sorted(reasons.items())),
        "withdrawn": sum(d.get("referral", {}).get("status") == "withdrawn" for d in docs),
        "waiting_for_a_provider": len(waiting),
        "trajectories": {
            "opened": len(opened),
            "open": len(open_),
            "placed": len(placed),
            "closed": len(closed),
            "closed_by_reason": dict(sorted(Counter(d["closed"]["reason"] for d in closed).items())),
        },
        "outflow_to_work": {"placed": len(placed),
                            "share": round(len(placed) / len(opened), 4) if opened else None},
        "median_days": {"referral_to_contract": _median(to_contract),
                        "referral_to_placement": _median(to_placement)},
        "volumes_by_programme": {p: sum(d.get("programme") == p for d in opened) for p in PROGRAMMES},
    }


def _waiting_for(doc: Doc) -> list[str]:
    """The disciplines a trajectory still waits for a provider in (none once it ended)."""
    if doc.get("closed") or doc.get("placement"):
        return []
    return [d for d, w in doc.get("waitlist", {}).items()
            if "assigned_on" not in w and "refused_on" not in w]


def waitlist_figures(docs: list[Doc], filters: Filters = Filters()) -> dict[str, Any]:
    """Waitlists per programme and discipline: who waits now, and who ever waited (and
    how long, for those who got a place)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    # A waiting trajectory has no assignment in the discipline it waits for: the
    # discipline narrows the waitlist entries, not the trajectories.
    admitted = dataclasses.replace(filters, discipline=None)
    for doc in docs:
        if not admitted.admits(doc):
            continue
        now = set(_waiting_for(doc))
        for discipline, entry in doc.get("waitlist", {}).items():
            if filters.discipline and discipline != filters.discipline:
                continue
            row = rows.setdefault((doc.get("programme") or "", discipline),
                                  {"waiting": 0, "waitlisted": 0, "refused": 0, "days": []})
            row["waitlisted"] += 1
            row["waiting"] += discipline in now
            row["refused"] += "refused_on" in entry
            if (days := _days(entry["since"], entry.get("assigned_on"))) is not None:
                row["days"].append(days)
    return {
        "waiting": sum(r["waiting"] for r in rows.values()),
        "waitlisted": sum(r["waitlisted"] for r in rows.values()),
        "by_discipline": [{"programme": p, "discipline": d, "waiting": r["waiting"],
                           "waitlisted": r["waitlisted"], "refused": r["refused"],
                           "median_days_waited": _median(r["days"])}
                          for (p, d), r in sorted(rows.items())],
    }


def _tender(tender: Sequence[Doc], fact: str) -> list[Doc]:
    return [d for d in tender if d.get("fact") == fact]


def volume_figures(docs: list[Doc], tender: list[Doc], filters: Filters = Filters()) -> list[dict[str, Any]]:
    """Trajectories opened per programme against the yearly volume contracted for the five
    municipalities together (from the tender's reference data on Kafka), pro rata to the
    period asked for when there is one."""
    opened = Counter(d.get("programme") for d in docs if filters.admits(d) and d.get("opened_on"))
    contracted = {d["programme"]: d["yearly_volume"] for d in _tender(tender, "programme")}
    years = ((filters.end - filters.start).days + 1) / 365 if filters.start and filters.end else None
    rows = []
    for programme in PROGRAMMES:
        if filters.programme and programme != filters.programme:
            continue
        yearly = contracted.get(programme)
        for_period = round(yearly * years, 1) if yearly is not None and years else None
        rows.append({"programme": programme, "opened": opened.get(programme, 0),
                     "contracted_yearly": yearly, "contracted_for_period": for_period})
    return rows


def budget_figures(docs: list[Doc], tender: list[Doc], municipalities: list[str],
                   filters: Filters = Filters()) -> list[dict[str, Any]]:
    """Per budget: what the assignments so far commit of it (each assignment at its
    contract's tariff), against the budget of the municipalities in view (their shares),
    both split over the budget's sources (ESF-3, the WWB work budget) in the budget's
    own proportion."""
    tariffs = {(c["provider"], c["programme"], c["discipline"]): c["tariff_eur"]
               for c in _tender(tender, "contract")}
    rows = []
    for budget in sorted(_tender(tender, "budget"), key=lambda b: b["budget"]):
        in_view = [m for m in municipalities if m in budget["shares_eur"]] if budget["shares_eur"] else municipalities
        if not in_view:
            continue
        available = (sum(budget["shares_eur"][m] for m in in_view) if budget["shares_eur"]
                     else budget["total_eur"])
        used: Counter[str] = Counter()
        untariffed = 0
        for doc in docs:
            if doc.get("programme") not in budget["programmes"] or doc.get("municipality") not in in_view:
                continue
            if not filters.admits(doc):
                continue
            for key, provider in doc.get("commitments", {}).items():
                discipline = key.split("|", 1)[1]
                if filters.provider and provider != filters.provider:
                    continue
                if filters.discipline and discipline != filters.discipline:
                    continue
                tariff = tariffs.get((provider, doc["programme"], discipline))
                if tariff is None:
                    untariffed += 1
                    continue
                used[doc["municipality"]] += tariff
        total_used = sum(used.values())
        rows.append({
            "budget": budget["budget"], "title": budget["title"], "programmes": budget["programmes"],
            "municipalities": in_view, "budget_eur": available, "used_eur": total_used,
            "share_used": round(total_used / available, 4) if available else None,
            "budget_by_source_eur": _split(available, budget), "used_by_source_eur": _split(total_used, budget),
            "used_per_municipality_eur": {m: used.get(m, 0) for m in in_view},
            "assignments_without_a_tariff": untariffed,
        })
    return rows


def _split(amount: float, budget: Doc) -> dict[str, float]:
    """An amount over the budget's sources, in the proportion they fund the budget."""
    total = budget["total_eur"] or 1
    return {source: round(amount * part / total, 2) for source, part in sorted(budget["sources_eur"].items())}


def coaching_figures(docs: list[Doc], filters: Filters = Filters(),
                     today: dt.date | None = None) -> dict[str, Any]:
    plans = [d["coaching"] for d in docs if filters.admits(d) and d.get("coaching", {}).get("plan_id")]
    coaches = Counter(p.get("coach_now") or p.get("coach_id") for p in plans)
    completed = [p["completed"] for p in plans if p.get("completed")]
    overdue = sum(1 for p in plans for n in p.get("overdue", {}) if n not in p.get("check_ins", {}))
    return {
        "plans": len(plans),
        "completed": len(completed),
        **outcome_figures(docs, filters, today),
        "survival": survival_by_programme([d for d in docs if filters.admits(d)], today or _today()),
        "check_ins_overdue": overdue,
        "jobs_lost": sum(len(p.get("jobs_lost", {})) for p in plans),
        "coach_changes": sum(len(p.get("coach_changes", {})) for p in plans),
        "plans_per_coach": dict(sorted(coaches.items())),
    }


def _today() -> dt.date:
    """The installation's date (`contracts.clock`: the wall clock unless the environment
    sets a simulated one), when the caller names none: whether a point has passed is a
    question of the business's time, as coaching's due dates are."""
    return installation_clock().today()


def _point(months: int) -> str:
    return f"{months}_months"


def _outcomes(doc: Doc, today: dt.date) -> list[Outcome]:
    """The results of a placement at the points it has reached by `today` (none if it has
    no placement)."""
    placement = placement_of(doc)
    if placement is None:
        return []
    return [o for o in (outcome_at(placement, m) for m in POINTS) if o.point <= today]


def _outcome_block(outcomes: list[Outcome]) -> dict[str, Any]:
    """One point's results: employed + not_employed + unknown = reached, and
    sum(by_evidence) = employed + not_employed (what is known, by what proves it)."""
    results = Counter(o.result for o in outcomes)
    known = results["employed"] + results["not-employed"]
    evidence = Counter(o.evidence.kind for o in outcomes if o.evidence)
    return {
        "reached": len(outcomes),
        "employed": results["employed"],
        "not_employed": results["not-employed"],
        "unknown": results["unknown"],
        "share_employed_of_known": round(results["employed"] / known, 4) if known else None,
        "same_employer": sum(o.result == "employed" and o.same_employer is True for o in outcomes),
        "by_evidence": {kind: evidence[kind] for kind in EVIDENCE},
    }


def _outcome_blocks(per_doc: list[list[Outcome]]) -> dict[str, Any]:
    return {_point(m): _outcome_block([o for outcomes in per_doc for o in outcomes if o.months == m])
            for m in POINTS}


def _providers_of(doc: Doc, filters: Filters) -> set[str]:
    """The providers under which a trajectory counts: each one `Filters(provider=...)`
    admits it for (assigned in any discipline, or in the one asked for)."""
    return {a["provider"] for d, a in doc.get("assignments", {}).items()
            if (not filters.discipline or d == filters.discipline)
            and (not filters.provider or a["provider"] == filters.provider)}


def outcome_figures(docs: list[Doc], filters: Filters = Filters(),
                    today: dt.date | None = None) -> dict[str, Any]:
    """Whether placed people still work 6, 12 and 24 months after the placement's start,
    by the evidence rule of `reporting.outcomes`: per point, the placements that reached
    it by `today` (default: the installation's date), each employed, not employed or unknown --
    employed + not_employed + unknown = reached -- and the share employed of those whose
    result is known, with the unknown count beside it. The same per municipality, per
    programme and per provider (a trajectory with several providers counts under each,
    as `?provider=` narrows it: those rows need not add up to the total)."""
    today = today or _today()
    placed = [(d, outcomes) for d in docs if filters.admits(d) and (outcomes := _outcomes(d, today))]
    groups: dict[str, dict[str, list[list[Outcome]]]] = {"municipality": {}, "programme": {}, "provider": {}}
    for doc, outcomes in placed:
        groups["municipality"].setdefault(doc.get("municipality") or "", []).append(outcomes)
        groups["programme"].setdefault(doc.get("programme") or "", []).append(outcomes)
        for provider in _providers_of(doc, filters):
            groups["provider"].setdefault(provider, []).append(outcomes)
    return {
        "outcomes": {"as_of": today.isoformat(), **_outcome_blocks([o for _, o in placed])},
        "outcomes_by": {by: {key: _outcome_blocks(rows) for key, rows in sorted(group.items())}
                        for by, group in groups.items()},
    }


def lbu_figures(offers: list[Doc], filters: Filters = Filters(),
                today: dt.date | None = None) -> dict[str, Any]:
    def when(o: Doc) -> str | None:
        return o.get("lbu", {}).get("offered_on")

    if filters.start or filters.end:
        offers = [o for o in offers if when(o) and (not filters.start or when(o) >= filters.start.isoformat())
                  and (not filters.end or when(o) <= filters.end.isoformat())]
    lbu = [o.get("lbu", {}) for o in offers]
    return {
        "offers": len(lbu),
        "accepted": sum(bool(o.get("accepted_on")) for o in lbu),
        "refused": sum(bool(o.get("refused_on")) for o in lbu),
        "returned_for_benefit": sum(bool(o.get("returned_on")) for o in lbu),
        "unknown_destination": sum(bool(o.get("unknown_since")) and not o.get("returned_on") for o in lbu),
        "left_unknown_destination": sum(bool(o.get("returned_from_unknown")) for o in lbu),
        "destinations": destination_figures(offers, today),
    }


def destination_figures(offers: list[Doc], today: dt.date | None = None) -> dict[str, Any]:
    """Where the unknown-destination cohort went, 3, 6 and 12 months after the refusal:
    of those whose point has passed by `today`, working (the employment registry), back
    on a benefit (the benefit administration, or they came back for one) or still
    unknown -- working + back_on_benefit + still_unknown = reached; `not_observed` counts
    those still unknown for want of any registry answer."""
    today = today or _today()
    blocks = {}
    for months in LBU_POINTS:
        seen = [w for o in offers if (w := destination_at(o, months)) is not None and w.point <= today]
        where = Counter(w.destination for w in seen)
        evidence = Counter(w.evidence for w in seen if w.evidence)
        blocks[f"{months}_months"] = {
            "reached": len(seen), "working": where["working"], "back_on_benefit": where["back-on-benefit"],
            "still_unknown": where["still-unknown"],
            "not_observed": sum(w.evidence is None for w in seen),
            "by_evidence": {k: evidence[k] for k in ("registry", "benefit-administration", "returned")},
        }
    return blocks


def provider_results(docs: list[Doc], filters: Filters = Filters(),
                     tender: Sequence[Doc] = (), today: dt.date | None = None) -> list[dict[str, Any]]:
    """Per provider and discipline: trajectories assigned, placed, closed (ended other
    than in a job; a placement is not counted as closed too), the result twelve months
    after the placement (employed, not employed, unknown: by the evidence rule of
    `reporting.outcomes`, for the placements that reached the point), and what their
    assignments commit at the contract's tariff (None where no contract names one)."""
    today = today or _today()
    tariffs = {(c["provider"], c["programme"], c["discipline"]): c["tariff_eur"]
               for c in _tender(tender, "contract")}
    rows: dict[tuple[str, str], Counter[str]] = {}
    committed: dict[tuple[str, str], int | None] = {}
    for doc in docs:
        if not filters.admits(doc):
            continue
        twelve = next((o.result for o in _outcomes(doc, today) if o.months == 12), None)
        for discipline, assignment in doc.get("assignments", {}).items():
            if filters.provider and assignment["provider"] != filters.provider:
                continue
            key = (assignment["provider"], discipline)
            counts = rows.setdefault(key, Counter())
            counts["assigned"] += 1
            counts[outcome(doc)] += 1  # placed and closed never overlap, as in the figures
            if twelve is not None:
                counts[f"12:{twelve}"] += 1
            committed.setdefault(key, 0)
        for day_discipline, provider in doc.get("commitments", {}).items():
            key = (provider, day_discipline.split("|", 1)[1])
            if key in rows and committed[key] is not None:
                tariff = tariffs.get((provider, doc.get("programme"), key[1]))
                committed[key] = None if tariff is None else committed[key] + tariff
    return [{"provider": p, "discipline": d, "assigned": c["assigned"], "placed": c["placed"],
             "closed": c["closed"], "retained_after_12_months": c["12:employed"],
             "not_employed_after_12_months": c["12:not-employed"], "unknown_after_12_months": c["12:unknown"],
             "committed_eur": committed[(p, d)]}
            for (p, d), c in sorted(rows.items())]
