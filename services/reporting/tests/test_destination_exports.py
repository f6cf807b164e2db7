"""The exports a municipality sends on claim no more than the records prove, and add up
(issue 15, item 3).

- the ESF participant list's result after twelve months comes from the evidence rule of
  `reporting.outcomes` (with its evidence), never from coaching's job record: a
  placement with contact only at week 2 was exported "employed-after-12-months";
- `/exports/durable-outflow.csv`: per municipality, programme, provider and point (6,
  12, 24 months after the placement), employed + not_employed + unknown = reached and the
  evidence counts add up to employed + not_employed; every row is what `/figures` answers
  for the same municipality, programme and provider;
- `/exports/lbu-destinations.csv`: per municipality and point (3, 6, 12 months after the
  refusal), working + back_on_benefit + still_unknown = reached, the evidence counts add
  up to reached - not_observed; every row is `/figures`' `lbu.destinations`.
"""

import csv
import datetime as dt
import io
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import events as ev
from contracts.access import Credentials
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.outcomes import add_months
from reporting.store import ReportingStore
from services.reporting.tests.factory import coached, refuser, wrap

START = dt.date(2008, 3, 3)
TODAY = dt.date(2011, 1, 1)  # every point of a 2008 placement has passed




def serve(tmp_path, events, today=TODAY):
    path, tokens = write_credentials(tmp_path / "config")
    store = ReportingStore(f"sqlite:///{tmp_path}/r.db")
    for offset, e in enumerate(events):
        store.apply(e, "t", 0, offset)
    return store, TestClient(create_api(store, Credentials.from_file(path), today=lambda: today)), tokens


def rows(answer):
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(answer.text)))


# --- the ESF participant list -----------------------------------------------------------


def test_a_placement_with_contact_only_at_week_2_is_not_exported_as_employed(tmp_path):
    """Coaching's year ended "employed" (the job was never reported as ended), but nobody
    had contact after week 2: the ESF list says unknown, not employed."""
    store, http, tokens = serve(tmp_path, coached(contacts=(2,)))
    try:
        [row] = rows(http.get("/exports/esf-participants.csv",
                              headers={"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}))
    finally:
        store.close()
    assert row["result"] == "unknown-after-12-months"
    assert (row["result_12_months"], row["evidence_12_months"], row["evidence_on_12_months"]) == ("unknown", "", "")


def without_provider(events):
    return [e for e in events if not isinstance(e.data, ev.ProviderAssigned)]


def with_second_provider(events, provider="inova"):
    t = events[0].data.trajectory_id
    second = ev.ProviderAssigned(trajectory_id=t, provider=provider, discipline="Diagnose",
                                 assigned_on=START - dt.timedelta(days=50))
    return [*events, wrap(second, municipality=events[0].data.municipality)]


def placements():
    """Placements with what proves (or does not prove) their results, in two
    municipalities, two programmes and three providers, one with two providers, one with
    none, and one whose twelve-month point has not come by TODAY."""
    return (coached()  # every check-in with contact: employed at 6 and 12, by check-in
            + coached(contacts=(2,))  # contact at week 2 only: unknown
            + coached(lost_on=START + dt.timedelta(days=100), provider="dhg")  # not employed, the coach's report
            + with_second_provider(coached(contacts=(2, 6, 13, 26), provider="dhg",
                                           follow_ups=((add_months(START, 24), True),)))
            + coached(municipality="heiloo", programme="reintegration", contacts=(2, 6),
                      registry=((6, True), (12, False), (24, True)))  # the registry
            + without_provider(coached(municipality="heiloo", programme="reintegration",
                                       start=dt.date(2008, 9, 1), contacts=(2,), registry=((6, False),)))
            + coached(municipality="heiloo", programme="reintegration", provider="inova",
                      start=add_months(TODAY, -9)))  # six months passed, twelve not yet


def refusers():
    day = dt.date(2008, 2, 1)
    return (refuser(day, ((3, True, False), (6, True, False), (12, True, True)))  # working
            + refuser(day, ((3, False, True), (6, False, False)))  # a benefit, then nobody knows
            + refuser(day, (), returned_on=day + dt.timedelta(days=120))  # came back for a benefit
            + refuser(day)  # no answer at all
            + refuser(dt.date(2009, 5, 4), ((3, False, False),), municipality="bergen")
            + refuser(add_months(TODAY, -4), municipality="bergen"))  # only three months passed


@pytest.fixture
def world(tmp_path):
    store, http, tokens = serve(tmp_path, placements() + refusers())

    def get(path, who="region-staff", **params):
        return http.get(path, params=params, headers={"Authorization": f"Bearer {tokens[who]}"})

    yield get
    store.close()


def test_the_esf_list_keeps_its_columns_and_adds_the_result_with_its_evidence(world):
    answer = world("/exports/esf-participants.csv")
    header = answer.text.splitlines()[0].split(",")
    assert header[:8] == ["participant", "municipality", "programme", "start", "end", "target_group",
                          "activities", "result"]  # as before: a municipality's import keeps working
    assert header[8:] == ["result_12_months", "evidence_12_months", "evidence_on_12_months"]
    got = sorted((r["result"], r["result_12_months"], r["evidence_12_months"], r["evidence_on_12_months"])
                 for r in rows(answer))
    week_52 = (START + dt.timedelta(weeks=52)).isoformat()
    assert got == sorted([
        ("employed-after-12-months", "employed", "check-in", week_52),
        ("unknown-after-12-months", "unknown", "", ""),
        ("not-employed-after-12-months", "not-employed", "job-loss", (START + dt.timedelta(days=100)).isoformat()),
        ("unknown-after-12-months", "unknown", "", ""),  # contact until week 26: nothing speaks for month 12
        ("not-employed-after-12-months", "not-employed", "registry", add_months(START, 12).isoformat()),
        ("unknown-after-12-months", "unknown", "", ""),  # the registry answered for six months only
        ("placed", "not-yet", "", ""),
    ])


def test_the_esf_list_of_a_trajectory_without_a_placement_has_no_twelve_month_result(tmp_path):
    store, http, tokens = serve(tmp_path, [e for e in coached() if isinstance(
        e.data, (ev.TrajectoryOpened, ev.ProviderAssigned))])
    try:
        [row] = rows(http.get("/exports/esf-participants.csv",
                              headers={"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}))
    finally:
        store.close()
    assert (row["result"], row["result_12_months"], row["evidence_12_months"]) == ("ongoing", "", "")


# --- durable outflow --------------------------------------------------------------------

EVIDENCE = ["evidence_registry", "evidence_employer", "evidence_check_in", "evidence_follow_up", "evidence_job_loss"]
COUNTS = ["reached", "employed", "not_employed", "unknown"]


def assert_outflow_adds_up(row):
    n = {k: int(row[k]) for k in COUNTS + EVIDENCE}
    assert n["employed"] + n["not_employed"] + n["unknown"] == n["reached"], row
    assert sum(n[k] for k in EVIDENCE) == n["employed"] + n["not_employed"], row
    known = n["employed"] + n["not_employed"]
    assert row["share_employed_of_known"] == (str(round(n["employed"] / known, 4)) if known else ""), row


def block_of(row):
    """A CSV row as `/figures`' outcome block (without same_employer, which it does not carry)."""
    share = row["share_employed_of_known"]
    return {**{k: int(row[k]) for k in COUNTS}, "share_employed_of_known": float(share) if share else None,
            "by_evidence": {k.removeprefix("evidence_").replace("_", "-"): int(row[k]) for k in EVIDENCE}}


def figures_block(world, row, **filters):
    params = {"municipality": row["municipality"], "programme": row["programme"], **filters}
    if row["provider"]:
        params["provider"] = row["provider"]
    figures = world("/figures", **params).json()
    block = dict(figures["coaching"]["outcomes"][f"{row['months_after_placement']}_months"])
    block.pop("same_employer")
    return block


def test_durable_outflow_adds_up_and_every_row_is_what_the_figures_say(world):
    answer = world("/exports/durable-outflow.csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="durable-outflow.csv"'
    assert answer.text.splitlines()[0] == ("municipality,programme,provider,months_after_placement,as_of,reached,"
                                           "employed,not_employed,unknown,share_employed_of_known," + ",".join(EVIDENCE))
    table = rows(answer)
    assert {(r["municipality"], r["programme"], r["provider"]) for r in table} == {
        ("alkmaar", "focus2move", "agens"), ("alkmaar", "focus2move", "dhg"), ("alkmaar", "focus2move", "inova"),
        ("heiloo", "reintegration", "agens"), ("heiloo", "reintegration", "inova"), ("heiloo", "reintegration", "")}
    assert len(table) == 6 * 3 and {r["as_of"] for r in table} == {TODAY.isoformat()}
    for row in table:
        assert_outflow_adds_up(row)
        if row["provider"]:  # what /figures answers for the same municipality, programme and provider
            assert block_of(row) == figures_block(world, row), row
    # No provider assigned: the rest of its municipality and programme (single providers there).
    for months in (6, 12, 24):
        here = [r for r in table if (r["municipality"], r["months_after_placement"]) == ("heiloo", str(months))]
        whole = figures_block(world, {**here[0], "provider": ""})
        assert {k: sum(int(r[k]) for r in here) for k in COUNTS} == {k: whole[k] for k in COUNTS}, months
    unassigned = {r["months_after_placement"]: r for r in table if r["provider"] == ""}
    assert (unassigned["6"]["not_employed"], unassigned["6"]["evidence_registry"], unassigned["12"]["unknown"]) == (
        "1", "1", "1")
    inova = {r["months_after_placement"]: r for r in table if r["provider"] == "inova" and r["municipality"] == "heiloo"}
    assert (inova["6"]["reached"], inova["12"]["reached"], inova["24"]["reached"]) == ("1", "0", "0")  # not yet


def test_durable_outflow_takes_the_same_filters_as_the_figures(world):
    for filters in ({"provider": "dhg"}, {"programme": "reintegration"}, {"discipline": "Diagnose"},
                    {"start": "2008-01-01", "end": "2008-06-30"}):
        table = rows(world("/exports/durable-outflow.csv", **filters))
        assert table, filters
        for row in table:
            assert_outflow_adds_up(row)
            if row["provider"]:
                narrowed = {k: v for k, v in filters.items() if k not in ("provider", "programme")}
                assert block_of(row) == figures_block(world, row, **narrowed), (filters, row)
    assert {r["provider"] for r in rows(world("/exports/durable-outflow.csv", provider="dhg"))} == {"dhg"}
    assert {r["provider"] for r in rows(world("/exports/durable-outflow.csv", discipline="Diagnose"))} == {"inova"}
    # The period is on the referral date, as in /figures: the heiloo placement of 2008-09 falls outside.
    spring = rows(world("/exports/durable-outflow.csv", start="2008-01-01", end="2008-06-30"))
    assert "" not in {r["provider"] for r in spring}


# --- the LBU cohort's unknown destinations ---------------------------------------------

LBU_EVIDENCE = ["evidence_registry", "evidence_benefit_administration", "evidence_returned"]


def test_lbu_destinations_add_up_and_every_row_is_what_the_figures_say(world):
    answer = world("/exports/lbu-destinations.csv")
    assert answer.text.splitlines()[0] == ("municipality,months_after_refusal,as_of,reached,working,back_on_benefit,"
                                           "still_unknown,not_observed," + ",".join(LBU_EVIDENCE))
    table = rows(answer)
    five = ["alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo"]
    assert [(r["municipality"], r["months_after_refusal"]) for r in table] == [
        (m, str(p)) for m in five for p in (3, 6, 12)]  # every municipality in view, also with nothing
    for row in table:
        n = {k: int(v) for k, v in row.items() if k not in ("municipality", "months_after_refusal", "as_of")}
        assert n["working"] + n["back_on_benefit"] + n["still_unknown"] == n["reached"], row
        assert sum(n[k] for k in LBU_EVIDENCE) == n["reached"] - n["not_observed"], row
        figures = world("/figures", municipality=row["municipality"]).json()
        block = figures["lbu"]["destinations"][f"{row['months_after_refusal']}_months"]
        assert n == {**{k: block[k] for k in ("reached", "working", "back_on_benefit", "still_unknown",
                                              "not_observed")},
                     **{f"evidence_{k.replace('-', '_')}": v for k, v in block["by_evidence"].items()}}, row
    got = {(r["municipality"], r["months_after_refusal"]): (r["reached"], r["working"], r["back_on_benefit"],
                                                           r["still_unknown"], r["not_observed"]) for r in table}
    assert got[("alkmaar", "6")] == ("4", "1", "1", "2", "1")
    assert got[("bergen", "3")] == ("2", "0", "0", "2", "1")  # still unknown: the registry said no, or nothing
    assert got[("bergen", "6")] == ("1", "0", "0", "1", "1")  # the 2026 refusal has not reached six months


def test_lbu_destinations_by_period_of_the_offer(world):
    table = rows(world("/exports/lbu-destinations.csv", start="2009-01-01", end="2009-12-31"))
    assert {r["municipality"]: r["reached"] for r in table if r["months_after_refusal"] == "3"} == {
        "alkmaar": "0", "bergen": "1", "castricum": "0", "heerhugowaard": "0", "heiloo": "0"}
    assert world("/exports/lbu-destinations.csv", start="notadate").status_code == 422


# --- who sees what; no personal data ---------------------------------------------------


@pytest.mark.parametrize("path", ["/exports/durable-outflow.csv", "/exports/lbu-destinations.csv"])
def test_a_municipality_sees_its_own_rows_only_and_no_person(world, path):
    for who in ("alkmaar-case-system", "alkmaar-staff"):
        assert {r["municipality"] for r in rows(world(path, who))} == {"alkmaar"}
        assert world(path, who, municipality="heiloo").status_code == 403
    assert {r["municipality"] for r in rows(world(path, "bergen-case-system"))} <= {"bergen"}
    assert world(path, "agens-provider").status_code == 403
    assert world(path, "region-staff", municipality="heiloo").status_code == 200
    body = world(path).text
    # Counts only: no trajectory, client or offer id, no name, no BSN (nine digits).
    assert not any(c.isdigit() and len(c) >= 9 for c in body.replace("\n", ",").split(","))
    every_id = {str(getattr(e.data, a)) for e in placements() + refusers()
                for a in ("trajectory_id", "client_id", "offer_id") if hasattr(e.data, a)}
    assert not any(i in body for i in every_id)
