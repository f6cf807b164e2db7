"""Files for auditors and statistics: the ESF participant list, provision records in the
shape of CBS's re-integration statistics (SRG), and a provider results sheet.

Reporting stores no personal data: the BSN column of the ESF list is filled at export
time, from intake, with the caller's own credential — and only for a caller intake
allows to see it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from reporting.documents import Doc
from reporting.figures import Filters, provider_results

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


def _result(doc: Doc) -> str:
    if doc.get("coaching", {}).get("completed"):
        return "employed-after-12-months" if doc["coaching"]["completed"]["employed_at_end"] else "not-employed-after-12-months"
    if doc.get("placement"):
        return "placed"
    if doc.get("closed"):
        return f"closed:{doc['closed']['reason']}"
    return "ongoing"


def _end(doc: Doc) -> str | None:
    return (doc.get("closed") or {}).get("closed_on") or (doc.get("placement") or {}).get("starts_on")


def esf_participants(docs: list[Doc], filters: Filters,
                     bsn_of: Callable[[Doc], str | None] | None = None) -> str:
    """Participant, start and end of the ESF activity, target group, activities, result;
    the BSN column only when `bsn_of` is given (a caller allowed to see it)."""
    header = ["participant", "municipality", "programme", "start", "end", "target_group",
              "activities", "result"]
    if bsn_of:
        header.insert(1, "bsn")
    rows = []
    for doc in docs:
        if not doc.get("opened_on") or not filters.admits(doc):
            continue
        row = [doc.get("client_id"), doc["municipality"], doc.get("programme"), doc["opened_on"],
               _end(doc), ESF_TARGET_GROUPS.get(doc.get("benefit", ""), "other"),
               ";".join(sorted(doc.get("assignments", {}))), _result(doc)]
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


def provider_sheet(docs: list[Doc], filters: Filters, tender: Sequence[Doc] = ()) -> str:
    results = provider_results(docs, filters, tender)
    keys = ["provider", "discipline", "assigned", "placed", "closed", "retained_after_12_months", "committed_eur"]
    return _csv(keys, ([r[k] for k in keys] for r in results))
