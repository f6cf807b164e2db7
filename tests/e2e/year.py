"""A realistic year of the five municipalities, drawn from a seed: who is referred to
which programme and when, who is eligible and why not, and what happens next in each
trajectory and coaching year. Plain data and plain Python, and the figures that follow
from it, worked out here from the plan and the tender's data file alone (never with
reporting's code), for the end-to-end test to hold reporting's answers against.

The year runs from April 2007 to March 2008, inside the tender's contract period
(2006-01-01..2008-04-30); Focus2Move, Alkmaar's pilot, takes referrals from January 2008.
"""

from __future__ import annotations

import datetime as dt
import random
import statistics
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAME = "Jaar Deelnemer"  # the privacy scan looks for this in every topic and log file
FIRST_DAY, LAST_DAY = dt.date(2007, 4, 1), dt.date(2008, 3, 31)
FOCUS2MOVE_FROM = dt.date(2008, 1, 2)
TENDER_FILE = (Path(__file__).resolve().parents[2] / "services" / "trajectory" / "trajectory"
               / "data" / "tender-2005.toml")
# Roughly by size (Alkmaar pays about 3 of the 5 million).
MUNICIPALITY_WEIGHTS = {"alkmaar": 45, "heerhugowaard": 22, "castricum": 11, "bergen": 11, "heiloo": 11}
CHECK_IN_WEEKS = (2, 6, 13, 26, 39, 52)  # coaching's default schedule
CLOSING_REASONS = ("dropped-out", "moved-away", "back-on-benefit", "unknown-destination", "other")

# (programme, benefit, distance to the labour market, registered at UWV, weight, and the
# reasons the rules of the source texts give against it; Focus2Move outside Alkmaar adds
# "focus2move-not-offered").
CASES: tuple[tuple[str, str, str, bool, int, tuple[str, ...]], ...] = (
    ("social-activation", "bijstand", "large", False, 30, ()),
    ("social-activation", "wao", "very-large", False, 14, ()),
    ("social-activation", "bijstand-wao", "large", True, 10, ()),
    ("social-activation", "bijstand", "small", False, 4, ("social-activation-needs-large-distance",)),
    ("social-activation", "none", "unknown", False, 2,
     ("social-activation-needs-bijstand-or-wao", "social-activation-needs-large-distance")),
    ("reintegration", "none", "unknown", True, 9, ()),
    ("reintegration", "anw", "large", True, 6, ()),
    ("reintegration", "anw", "large", False, 2, ("reintegration-needs-uwv-registration",)),
    ("reintegration", "bijstand", "small", False, 1,
     ("reintegration-only-for-nugger-or-anw", "reintegration-needs-uwv-registration")),
    ("focus2move", "bijstand", "large", False, 20, ()),
    ("focus2move", "wao", "large", False, 1, ("focus2move-needs-bijstand",)),
)


@dataclass(frozen=True)
class Coaching:
    """The year after a placement: the check-ins the coach records (the first `check_ins`
    of the schedule, each on its due date) and the job lost, if it is."""

    job_starts_on: dt.date
    check_ins: int
    lost_on: dt.date | None
    loss_reason: str = "dismissed"

    def due(self, number: int) -> dt.date:
        return self.job_starts_on + dt.timedelta(weeks=CHECK_IN_WEEKS[number - 1])

    @property
    def six_month_on(self) -> dt.date:
        return _add_months(self.job_starts_on, 6)

    def result_at(self, months: int) -> tuple[str, str | None]:
        """What the records of this year prove at `months` after the job's start, and by
        what (issue 15): the coach's check-ins are held on their due dates with contact,
        so the one scheduled at the point -- week 26 for six months, week 52 for twelve,
        both within days of it -- is the evidence when it was recorded; a job lost before
        the point (never within ten days of six months) is "not-employed" on the coach's
        report; the plan has no follow-up contacts or registry answers, so after the
        coaching year (24 months), and wherever the check-in was not held, it is unknown
        -- never employed because the job was never reported as ended."""
        point = _add_months(self.job_starts_on, months)
        at_the_point = {6: 4, 12: 6}.get(months)  # the check-in scheduled at the point
        if at_the_point is None:
            return "unknown", None
        if self.lost_on is not None and self.lost_on <= point:
            return "not-employed", "job-loss"
        if self.check_ins >= at_the_point:
            return "employed", "check-in"
        return "unknown", None


@dataclass(frozen=True)
class Step:
    """One signed report of the provider holding the entry discipline."""

    body: dict[str, Any]


@dataclass
class Referral:
    index: int
    municipality: str
    programme: str
    benefit: str
    distance: str
    registered: bool
    referred_on: dt.date
    reasons: tuple[str, ...]
    steps: list[Step] = field(default_factory=list)
    disciplines: list[str] = field(default_factory=list)  # every discipline it gets a provider in
    # The steps up to the last that asks for a provider in another discipline (a plan, an
    # obstacle): the desk decides those only while the trajectory runs, and in the world
    # weeks pass before the next report, so the test waits for them there.
    asking: int = 0
    contract_on: dt.date | None = None  # a temporary WNK contract
    outcome: tuple[str, dt.date] | None = None  # ("placed" or a closing reason, when)
    coaching: Coaching | None = None

    @property
    def eligible(self) -> bool:
        return not self.reasons

    def body(self, bsn: str) -> dict[str, Any]:
        return {
            "bsn": bsn, "name": f"{NAME} {self.index + 1}", "date_of_birth": "1971-08-19",
            "municipality": self.municipality, "programme": self.programme, "benefit": self.benefit,
            "uwv_registered_on": (self.referred_on - dt.timedelta(days=60)).isoformat() if self.registered else None,
            "distance_to_labour_market": self.distance, "referred_on": self.referred_on.isoformat(),
            "caseworker_id": f"jaar-{self.index % 23}",
        }


def _add_months(day: dt.date, months: int) -> dt.date:
    import calendar

    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def tender() -> dict[str, Any]:
    return tomllib.loads(TENDER_FILE.read_text("utf-8"))


def plan_year(count: int, seed: int) -> list[Referral]:
    """`count` referrals over the year, with what happens to each eligible one."""
    rng = random.Random(seed)
    programmes = {p["slug"]: p for p in tender()["programme"]}
    municipalities, weights = zip(*MUNICIPALITY_WEIGHTS.items(), strict=True)
    year: list[Referral] = []
    for index in range(count):
        programme, benefit, distance, registered, _, reasons = rng.choices(CASES, [c[4] for c in CASES])[0]
        if programme == "focus2move":
            # Mostly Alkmaar's own case system; now and then another municipality tries.
            municipality = "alkmaar" if rng.random() < 0.93 else rng.choice(municipalities[1:])
            if municipality != "alkmaar":
                reasons = (*reasons, "focus2move-not-offered")
            first = FOCUS2MOVE_FROM
        else:
            municipality = rng.choices(municipalities, weights)[0]
            first = FIRST_DAY
        referred_on = first + dt.timedelta(days=rng.randrange((LAST_DAY - first).days + 1))
        referral = Referral(index, municipality, programme, benefit, distance, registered, referred_on, reasons)
        if referral.eligible:
            _course(referral, programmes[programme], rng)
        year.append(referral)
    return year


def _course(r: Referral, programme: dict[str, Any], rng: random.Random) -> None:
    """What the provider holding the entry discipline reports, in order."""
    entry, day = programme["entry_discipline"], r.referred_on
    r.disciplines.append(entry)

    def report(what: str, after: int, **fields: Any) -> dt.date:
        on = day + dt.timedelta(days=after)
        date_field = {"plan-agreed": "agreed_on", "contract-started": "starts_on",
                      "obstacle-identified": "identified_on", "obstacle-resolved": "resolved_on",
                      "placed-in-job": "starts_on", "closed": "closed_on"}[what]
        r.steps.append(Step({"type": what, "discipline": entry, date_field: on.isoformat(), **fields}))
        if what in ("plan-agreed", "obstacle-identified"):
            r.asking = len(r.steps)
        return on

    if r.programme == "focus2move":
        r.contract_on = report("contract-started", 3)
        report("plan-agreed", 7, disciplines=[])
        if rng.random() < 0.7:
            kind = rng.choice(["debts", "addiction", "psychosocial", "housing"])
            obstacle = f"{r.index:08d}-0000-4000-8000-{r.index:012d}"
            report("obstacle-identified", 10, obstacle_id=obstacle, kind=kind)
            r.disciplines.append(programme["obstacle_disciplines"][kind])
            if rng.random() < 0.8:
                report("obstacle-resolved", 40, obstacle_id=obstacle, outcome=rng.choice(["resolved", "manageable"]))
        chances, span = (0.45, 0.25), (45, 120)
    elif r.programme == "reintegration":
        report("plan-agreed", 10, disciplines=["Directe bemiddeling en Nazorg"])
        r.disciplines.append("Directe bemiddeling en Nazorg")
        chances, span = (0.5, 0.3), (40, 200)
    else:
        if rng.random() < 0.1:
            r.outcome = ("dropped-out", report("closed", 20, reason="dropped-out"))
            return
        second = rng.choice([d for d in programme["disciplines"] if d != entry])
        report("plan-agreed", 14, disciplines=[second])
        r.disciplines.append(second)
        chances, span = (0.15, 0.45), (60, 200)
    roll, after = rng.random(), rng.randint(*span)
    if roll < chances[0]:
        on = report("placed-in-job", after, employer=f"Werkgever {r.index % 97}", hours_per_week=rng.choice([16, 24, 32, 36]),
                    contract_type=rng.choice(["permanent", "fixed-term", "temporary-agency"]))
        r.outcome = ("placed", on)
        r.coaching = _coaching_year(on, rng)
    elif roll < chances[0] + chances[1]:
        reason = rng.choice(CLOSING_REASONS)
        r.outcome = (reason, report("closed", after, reason=reason))


def _coaching_year(job_starts_on: dt.date, rng: random.Random) -> Coaching:
    lost_on = None
    if rng.random() < 0.25:
        six = _add_months(job_starts_on, 6)
        while lost_on is None or abs((lost_on - six).days) < 10:  # clearly before or after
            lost_on = job_starts_on + dt.timedelta(days=rng.randint(20, 340))
    plan = Coaching(job_starts_on, 0, lost_on, rng.choice(["dismissed", "resigned", "contract-ended", "illness"]))
    possible = sum(1 for n in range(1, 7) if lost_on is None or plan.due(n) < lost_on)
    return Coaching(job_starts_on, rng.randint(0, possible), lost_on, plan.loss_reason)


# --- the figures that follow from the plan, worked out independently ---------------------


def waitlisted_at_first(year: list[Referral]) -> dict[tuple[str, str], int]:
    """How many trajectories wait for their entry discipline when all referrals arrive
    before any place frees: per (programme, discipline), the requests beyond the places
    of the contracts covering them. Contracts of one discipline either cover the same
    municipalities or none in common; otherwise the answer would depend on arrival order."""
    data = tender()
    entry = {p["slug"]: p["entry_discipline"] for p in data["programme"]}
    waiting: Counter[tuple[str, str]] = Counter()
    for programme, discipline in entry.items():
        lots = [c for c in data["contract"] if c["programme"] == programme and c["discipline"] == discipline]
        groups: dict[frozenset[str], int] = {}
        for municipality in MUNICIPALITY_WEIGHTS:
            covering = frozenset(c["provider"] for c in lots if municipality in c["municipalities"])
            groups.setdefault(covering, 0)
        for covering in groups:
            if any(other != covering and other & covering for other in groups):
                raise AssertionError(f"overlapping contracts for {programme}/{discipline}")
            places = sum(c["places"] for c in lots if c["provider"] in covering)
            requests = sum(1 for r in year if r.eligible and r.programme == programme
                           and frozenset(c["provider"] for c in lots if r.municipality in c["municipalities"]) == covering)
            waiting[(programme, discipline)] += max(0, requests - places) if covering else requests
    return dict(waiting)


def _median(values: list[int]) -> float | None:
    return statistics.median(values) if values else None


def _outcomes(results: list[tuple[str, str | None]]) -> dict[str, Any]:
    counted = Counter(result for result, _ in results)
    known = counted["employed"] + counted["not-employed"]
    evidence = Counter(kind for _, kind in results if kind)
    return {"reached": len(results), "employed": counted["employed"], "not_employed": counted["not-employed"],
            "unknown": counted["unknown"],
            "share_employed_of_known": round(counted["employed"] / known, 4) if known else None,
            "by_evidence": {"registry": 0, "employer": 0, "check-in": evidence["check-in"], "follow-up": 0,
                            "job-loss": evidence["job-loss"]}}


def expected_figures(year: list[Referral], municipalities: list[str]) -> dict[str, Any]:
    """What reporting should answer for these municipalities, from the plan alone."""
    mine = [r for r in year if r.municipality in municipalities]
    eligible = [r for r in mine if r.eligible]
    placed = [r for r in eligible if r.outcome and r.outcome[0] == "placed"]
    closed = [r for r in eligible if r.outcome and r.outcome[0] != "placed"]
    coached = [r.coaching for r in placed if r.coaching]
    kept = [c for c in coached if c.lost_on is None]
    data = tender()
    tariffs = {(c["programme"], c["discipline"]): c["tariff_eur"] for c in data["contract"]}
    for c in data["contract"]:  # the prediction needs one tariff per discipline
        assert tariffs[(c["programme"], c["discipline"])] == c["tariff_eur"], "tariffs differ within a discipline"
    budgets = {}
    for b in data["budget"]:
        in_view = [m for m in municipalities if m in b["shares"]]
        if not in_view:
            continue
        used = sum(tariffs[(r.programme, d)] for r in eligible if r.programme in b["programmes"] for d in r.disciplines)
        budgets[b["slug"]] = {
            "budget_eur": sum(b["shares"][m] for m in in_view), "used_eur": used,
            "used_by_source_eur": {s: round(used * part / b["total_eur"], 2) for s, part in sorted(b["sources"].items())},
            "budget_by_source_eur": {s: round(sum(b["shares"][m] for m in in_view) * part / b["total_eur"], 2)
                                     for s, part in sorted(b["sources"].items())},
        }
    days = (LAST_DAY - FIRST_DAY).days + 1
    return {
        "referrals": len(mine),
        "rejected": len(mine) - len(eligible),
        "rejections_by_reason": dict(sorted(Counter(x for r in mine for x in r.reasons).items())),
        "opened": len(eligible),
        "placed": len(placed),
        # Each opened trajectory is open, placed or closed (ended otherwise): they add up.
        "closed": len(closed),
        "closed_by_reason": dict(sorted(Counter(r.outcome[0] for r in closed).items())),
        "open": len(eligible) - len(placed) - len(closed),
        "outflow_share": round(len(placed) / len(eligible), 4) if eligible else None,
        "median_days": {
            "referral_to_contract": _median([(r.contract_on - r.referred_on).days for r in eligible if r.contract_on]),
            "referral_to_placement": _median([(r.outcome[1] - r.referred_on).days for r in placed]),
        },
        "volumes": {p: sum(r.programme == p for r in eligible) for p in ("social-activation", "reintegration", "focus2move")},
        "contracted": {p["slug"]: (p["yearly_volume"], round(p["yearly_volume"] * days / 365, 1)) for p in data["programme"]},
        "assigned_per_discipline": dict(sorted(Counter(d for r in eligible for d in r.disciplines).items())),
        "budgets": budgets,
        "coaching": {
            "plans": len(coached), "completed": len(coached), "jobs_lost": len(coached) - len(kept),
            "check_ins_overdue": sum(len(CHECK_IN_WEEKS) - c.check_ins for c in coached),
            # Every point of the year's placements has passed (they lie in 2007-2010).
            "outcomes": {f"{months}_months": _outcomes([c.result_at(months) for c in coached])
                         for months in (6, 12, 24)},
        },
    }
