"""The survival curve: who is still employed, month by month since the placement (issue 15).

Each month is judged by the evidence rule of `reporting.outcomes` at its own point,
nothing carried forward between evidence points; per month employed + not_employed +
unknown = reached, and at 6, 12 and 24 months it agrees with `coaching.outcomes_by`.
"""

import datetime as dt
import re

from fastapi.testclient import TestClient

from contracts.access import Credentials
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.figures import coaching_figures, lbu_figures
from reporting.outcomes import Contact, Placement, add_months
from reporting.store import ReportingStore
from reporting.survival import survival, survival_by_programme
from services.reporting.tests.factory import WEEKS
from services.reporting.tests.test_outcomes import LATER, START, fold, refuser, the_mix


def pattern(rows):
    """One letter per month: Employed, Not employed, ? unknown, - not reached."""
    return "".join("-" if not r["reached"] else "E" if r["employed"] else "N" if r["not_employed"] else "?"
                   for r in rows)


def coached_year(contacts=WEEKS, losses=()):
    return Placement(START, add_months(START, 12), losses=losses,
                     contacts=tuple(Contact(START + dt.timedelta(weeks=w), True) for w in contacts))


def test_each_month_is_judged_by_its_own_window_and_nothing_is_carried_forward():
    # Check-ins at weeks 2, 6, 13, 26, 39, 52: months 5, 8 and 11 have none in their
    # window, and after the week-52 check-in (month 13) nothing speaks: unknown, never employed.
    assert pattern(survival([coached_year()], LATER)) == "EEEE?EE?EE?EE" + "?" * 11
    # Contact at week 2 only: employed at month 1, unknown after it.
    assert pattern(survival([coached_year((2,))], LATER)) == "E" + "?" * 23
    # A job loss the coach reported in month 2: not employed for the rest of the coaching year.
    lost = coached_year((2,), losses=(START + dt.timedelta(days=60),))
    assert pattern(survival([lost], LATER)) == "E" + "N" * 11 + "?" * 12


def test_only_placements_that_reached_the_month_count_and_the_shares_keep_the_unknown_in_view():
    today = add_months(START, 7)  # month 7's point is today: reached; month 8 is not
    rows = survival([coached_year(), coached_year((2,)), Placement(add_months(START, 5))], today)
    assert [r["reached"] for r in rows[:9]] == [3, 3, 2, 2, 2, 2, 2, 0, 0]
    six = rows[5]
    assert (six["employed"], six["not_employed"], six["unknown"]) == (1, 0, 1)
    assert (six["share_employed_of_known"], six["share_employed_of_reached"], six["share_unknown"]) == (1.0, 0.5, 0.5)
    fifth = rows[4]
    assert (fifth["reached"], fifth["unknown"], fifth["share_employed_of_known"], fifth["share_unknown"]) \
        == (2, 2, None, 1.0)
    assert rows[20]["share_employed_of_reached"] is None and rows[20]["share_unknown"] is None
    for r in rows:
        assert r["employed"] + r["not_employed"] + r["unknown"] == r["reached"]


def test_per_programme_it_adds_up_and_agrees_with_the_outcomes_at_6_12_and_24_months():
    docs = fold(the_mix())
    c = coaching_figures(docs, today=LATER)
    assert c["survival"] == survival_by_programme(docs, LATER)
    assert set(c["survival"]) == {"focus2move", "reintegration"}
    for programme, rows in c["survival"].items():
        assert [r["month"] for r in rows] == list(range(1, 25))
        for r in rows:
            assert r["employed"] + r["not_employed"] + r["unknown"] == r["reached"]
        for months in (6, 12, 24):
            block, row = c["outcomes_by"]["programme"][programme][f"{months}_months"], rows[months - 1]
            assert {k: row[k] for k in ("reached", "employed", "not_employed", "unknown", "share_employed_of_known")} \
                == {k: block[k] for k in ("reached", "employed", "not_employed", "unknown", "share_employed_of_known")}


def test_the_2008_dashboard_draws_the_survival_and_destinations_charts_from_the_figures(tmp_path):
    """The demo's installation: a simulated date in 2008, the dashboard's year that of the
    installation's date, and the charts from the same figures as `/figures`."""
    path, tokens = write_credentials(tmp_path / "config")
    store = ReportingStore(f"sqlite:///{tmp_path}/r.db")
    today = dt.date(2008, 12, 1)
    day = dt.date(2008, 2, 1)
    events = the_mix() + refuser(day, ((3, True, False), (6, False, True))) + refuser(day) + refuser(
        day, (), returned_on=day + dt.timedelta(days=120))
    for offset, e in enumerate(events):
        store.apply(e, "t", 0, offset)
    http = TestClient(create_api(store, Credentials.from_file(path), today=lambda: today))
    try:
        token = {"Authorization": f"Bearer {tokens['alkmaar-staff']}"}
        figures = http.get("/figures", headers=token).json()
        rows = figures["coaching"]["survival"]["focus2move"]
        assert "reintegration" not in figures["coaching"]["survival"]  # heiloo's placement is not alkmaar's
        assert [r["reached"] for r in rows][:10] == [4] * 8 + [0, 0]
        http.post("/dashboard/login", data={"token": tokens["alkmaar-staff"]})
        page = http.get("/dashboard").text
        assert "Tweespoor — Alkmaar, 2008" in page
        drawn = {int(m): tuple(map(int, rest)) for m, *rest in re.findall(
            r'data-month="(\d+)" data-reached="(\d+)" data-employed="(\d+)" data-not-employed="(\d+)" '
            r'data-unknown="(\d+)"', page)}
        assert drawn == {r["month"]: (r["reached"], r["employed"], r["not_employed"], r["unknown"])
                         for r in rows if r["reached"]}
        assert 'data-testid="survival-focus2move"' in page and "survival-reintegration" not in page
        destinations = lbu_figures(store.documents("offer", ["alkmaar"]), today=today)["destinations"]
        assert figures["lbu"]["destinations"] == destinations
        assert (destinations["3_months"]["reached"], destinations["12_months"]["reached"]) == (3, 0)
        segments = dict(re.findall(r'data-point="3" data-kind="(\w+)" data-value="(\d+)"', page))
        kinds = ("working", "back_on_benefit", "still_unknown")
        assert segments == {k: str(destinations["3_months"][k]) for k in kinds}
        assert "12 months (0 reached)" in page and "not reached yet" in page
    finally:
        store.close()
