"""Files for auditors and statistics: the ESF participant list, provision records in the
shape of CBS's re-integration statistics (SRG), a provider results sheet, and two
aggregate files on destinations: durable outflow after a placement, and where the LBU
cohort's unknown destinations went.

Reporting stores no personal data: the BSN column of the ESF list is filled at export
time, from intake, with the caller's own credential — and only for a caller intake
allows to see it. The two destination files hold counts only, no person or pseudonym.

Every result after a placement comes from the evidence rule of `reporting.outcomes`
(employed, not employed or unknown, with what proves it), and every count in the
destination files is what `/figures` answers for the same municipality and filters
(computed by the same functions): a file claims no more than the records prove.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from contracts.clock import installation_clock
from reporting.documents import Doc
from reporting.figures import Filters, lbu_figures, outcome_figures, provider_results
from reporting.outcomes import EVIDENCE, LBU_POINTS, POINTS, Outcome, outcome_at, placement_of

# CBS's SRG provision types, mapped from our programmes (after GGM's mapping of local
# activities to SRG codes): social activation, re-integration to work, and Focus2Move's
# work-with-support.
SRG_TYPES = {"social-activation": "sociale-activering", "reintegration": "re-integratie",
             "focus2move": "werkervaringsplaats"}
ESF_TARGET_GROUPS = {"bijstand": "uitkering-participatiewet", "wao": "arbeidsongeschikt",
                     "bijstand-wao": "uitkering-participatiewet", "anw": "anw", "none": "nugger"}


def _csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def _twelve_months(doc: Doc, today: dt.date) -> Outcome | str | None:
    """The placement's result twelve months after its start by the evidence rule, "not-yet"
    while that point has not come by `today`, None without a placement."""
    placement = placement_of(doc)
    if placement is None:
        return None
    twelve = outcome_at(placement, 12)
    return twelve if twelve.point <= today else "not-yet"


def _result(doc: Doc, twelve: Outcome | str | None) -> str:
    """The ESF list's result: after a placement whose twelve-month point has passed,
    employed, not employed or unknown by the evidence rule -- never coaching's
    `employed_at_end`, which is worked out from the job record, not observed."""
    if isinstance(twelve, Outcome):
        return f"{twelve.result}-after-12-months"
    if twelve == "not-yet":
        return "placed"
    if doc.get("closed"):
        return f"closed:{doc['closed']['reason']}"
    return "ongoing"


def _end(doc: Doc) -> str | None:
    return (doc.get("closed") or {}).get("closed_on") or (doc.get("placement") or {}).get("starts_on")


def esf_participants(docs: list[Doc], filters: Filters,
                     bsn_of: Callable[[Doc], str | None] | None = None,
                     today: dt.date | None = None) -> str:
    """Participant, start and end of the ESF activity, target group, activities, result;
    the BSN column only when `bsn_of` is given (a caller allowed to see it). After the
    guide's columns, the result twelve months after a placement with its evidence:
    `result_12_months` is employed / not-employed / unknown, "not-yet" before the point
    (as of `today`) and empty without a placement; `evidence_12_months` (registry,
    employer, check-in, follow-up, job-loss) and `evidence_on_12_months` say what proves
    it, empty when unknown."""
    today = today or installation_clock().today()  # the business's date, as the figures take it
    header = ["participant", "municipality", "programme", "start", "end", "target_group",
              "activities", "result", "result_12_months", "evidence_12_months", "evidence_on_12_months"]
    if bsn_of:
        header.insert(1, "bsn")
    rows = []
    for doc in docs:
        if not doc.get("opened_on") or not filters.admits(doc):
            continue
        twelve = _twelve_months(doc, today)
        evidence = twelve.evidence if isinstance(twelve, Outcome) else None
        row = [doc.get("client_id"), doc["municipality"], doc.get("programme"), doc["opened_on"],
               _end(doc), ESF_TARGET_GROUPS.get(doc.get("benefit", ""), "other"),
               ";".join(sorted(doc.get("assignments", {}))), _result(doc, twelve),
               twelve.result if isinstance(twelve, Outcome) else twelve,
               evidence and evidence.kind, evidence and evidence.on.isoformat()]
        if bsn_of:
            row.insert(1, bsn_of(doc))
        rows.append(row)
    return _csv(header, rows)


def _months(start: str, end: str | None, until: dt.date) -> Iterable[str]:
    first = dt.date.fromisoformat(start).replace(day=1)
    last = min(dt.date.fromisoformat(end) if end else until, until).replace(day=1)
    while first <= last:
        yield first.strftime("%Y-%m")
        first = (first + dt.timedelta(days=32)).replace(day=1)


def srg_provisions(docs: list[Doc], filters: Filters, until: dt.date) -> str:
    """One row per person, provision and month it ran, with its status that month."""
    rows = []
    for doc in docs:
        if not doc.get("opened_on") or not filters.admits(doc):
            continue
        end = _end(doc)
        for month in _months(doc["opened_on"], end, until):
            status = "ended" if end and month == end[:7] else "running"
            rows.append([doc.get("client_id"), doc["municipality"], SRG_TYPES.get(doc.get("programme", ""), "other"),
                         doc["opened_on"], end, month, status])
    return _csv(["person", "municipality", "provision_type", "start", "end", "month", "status"], rows)


def provider_sheet(docs: list[Doc], filters: Filters, tender: Sequence[Doc] = (),
                   today: dt.date | None = None) -> str:
    results = provider_results(docs, filters, tender, today)
    keys = ["provider", "discipline", "assigned", "placed", "closed", "retained_after_12_months", "committed_eur"]
    return _csv(keys, ([r[k] for k in keys] for r in results))


# --- destinations: counts only, each row what /figures answers for the same view -------

EVIDENCE_COLUMNS = [f"evidence_{kind.replace('-', '_')}" for kind in EVIDENCE]
DURABLE_OUTFLOW = ["municipality", "programme", "provider", "months_after_placement", "as_of", "reached",
                   "employed", "not_employed", "unknown", "share_employed_of_known", *EVIDENCE_COLUMNS]
LBU_EVIDENCE = ("registry", "benefit-administration", "returned")
LBU_DESTINATIONS = ["municipality", "months_after_refusal", "as_of", "reached", "working", "back_on_benefit",
                    "still_unknown", "not_observed", *(f"evidence_{k.replace('-', '_')}" for k in LBU_EVIDENCE)]


def durable_outflow(docs: list[Doc], filters: Filters, today: dt.date) -> str:
    """One row per municipality, programme, provider and point (6, 12, 24 months after the
    placement's start) with a placement that reached the point by `today`: reached =
    employed + not_employed + unknown, and the evidence counts add up to employed +
    not_employed. A row is `coaching.outcomes` of `/figures` for that municipality,
    programme and provider (computed by `outcome_figures` itself); a trajectory with
    several providers counts under each, as `?provider=` counts it, so those rows need
    not add up to a programme's total; one with no provider assigned has an empty
    provider. A group whose placements reached no point has no rows."""
    by_group: dict[tuple[str, str], list[Doc]] = {}
    for doc in docs:
        if filters.admits(doc) and placement_of(doc) is not None:
            by_group.setdefault((doc.get("municipality") or "", doc.get("programme") or ""), []).append(doc)
    rows = []
    for (municipality, programme), group in sorted(by_group.items()):
        blocks = dict(outcome_figures(group, filters, today)["outcomes_by"]["provider"])
        unassigned = outcome_figures([d for d in group if not d.get("assignments")], filters, today)["outcomes"]
        if any(unassigned[f"{m}_months"]["reached"] for m in POINTS):
            blocks[""] = unassigned
        for provider, points in sorted(blocks.items()):
            for months in POINTS:
                b = points[f"{months}_months"]
                rows.append([municipality, programme, provider, months, today.isoformat(), b["reached"],
                             b["employed"], b["not_employed"], b["unknown"], b["share_employed_of_known"],
                             *(b["by_evidence"][kind] for kind in EVIDENCE)])
    return _csv(DURABLE_OUTFLOW, rows)


def lbu_destinations(offers_by_municipality: dict[str, list[Doc]], filters: Filters, today: dt.date) -> str:
    """One row per municipality in view and point (3, 6, 12 months after the refusal):
    where the unknown-destination cohort went, of those whose point passed by `today` --
    reached = working + back_on_benefit + still_unknown, and the evidence counts add up to
    reached - not_observed (still unknown with no answer at all). A row is `lbu.destinations`
    of `/figures` for that municipality and period (the offer date)."""
    rows = []
    for municipality, offers in sorted(offers_by_municipality.items()):
        destinations = lbu_figures(offers, filters, today)["destinations"]
        for months in LBU_POINTS:
            b = destinations[f"{months}_months"]
            rows.append([municipality, months, today.isoformat(), b["reached"], b["working"], b["back_on_benefit"],
                         b["still_unknown"], b["not_observed"], *(b["by_evidence"][k] for k in LBU_EVIDENCE)])
    return _csv(LBU_DESTINATIONS, rows)
