"""The dashboard in headless Chromium (Debian's, driven by Playwright): what staff see
is what the read models hold, and only for their own municipality."""

from __future__ import annotations

import datetime as dt
import random
import socket
import threading
import time

import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from contracts.access import Credentials
from infra.browser import FLAGS, ensure_chromium
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.figures import (
    Filters, budget_figures, coaching_figures, lbu_figures, trajectory_figures, waitlist_figures,
)
from reporting.store import ReportingStore
from services.reporting.tests.factory import coached, placed_trajectory, rejected, tender, waitlisted
from services.reporting.tests.factory import refuser

TODAY = dt.date(2026, 11, 23)
YEAR = Filters(start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    directory = tmp_path_factory.mktemp("dashboard")
    path, tokens = write_credentials(directory)
    store = ReportingStore(f"sqlite:///{directory}/reporting.db")
    rng, offset = random.Random(2026), 0
    for event in tender():  # the budgets, volumes and tariffs, as trajectory publishes them
        store.apply(event, "t", 1, offset)
        offset += 1
    for _ in range(150):
        municipality = rng.choice(["alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo"])
        programme = rng.choice(["social-activation", "reintegration"] + ["focus2move"] * (municipality == "alkmaar"))
        events = placed_trajectory(municipality, programme, rng.choice(["agens", "dhg", "inova"]),
                                   rng.random() < 0.7, dt.date(2026, rng.randint(1, 10), rng.randint(1, 28)))
        events = events[:rng.randint(2, len(events))] + (rejected(municipality) if rng.random() < 0.2 else [])
        if rng.random() < 0.1:
            events += waitlisted(municipality, on=dt.date(2026, rng.randint(1, 10), 1))
        for event in events:
            store.apply(event, "t", 0, offset)
            offset += 1
    # Coached placements whose six-month point has passed: some proven in work by a
    # check-in, some who lost the job, some with contact only at week 2 (unknown).
    for i in range(24):
        municipality = ["alkmaar", "heiloo"][i % 2]
        start = dt.date(2026, 3, 2) + dt.timedelta(days=3 * i)
        events = coached(municipality, "reintegration", "dhg", start=start, contacts=[(2,), (2, 6, 13, 26)][i % 3 == 0],
                         lost_on=start + dt.timedelta(days=60) if i % 5 == 0 else None)
        for event in events:
            store.apply(event, "t", 0, offset)
            offset += 1
    # The LBU cohort: refusers whose destination became unknown, with the registry's and
    # the benefit administration's answers at 3 and 6 months (12 months not reached yet).
    for i in range(18):
        municipality, refused_on = ["alkmaar", "heiloo"][i % 2], dt.date(2026, 2 + i % 4, 1 + i)
        answers = [((3, True, False), (6, True, False)), ((3, False, True), (6, False, False)), (),
                   ((3, False, False),)]
        for event in refuser(refused_on, answers[i // 2 % 4], municipality=municipality,
                             returned_on=refused_on + dt.timedelta(days=150) if i % 7 == 3 else None):
            store.apply(event, "t", 0, offset)
            offset += 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_api(store, Credentials.from_file(path), today=lambda: TODAY),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", tokens, store
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        yield chromium
        chromium.close()


def sign_in(browser, url, token):
    page = browser.new_page()
    page.goto(f"{url}/dashboard")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=funnel]")
    return page


def numbers(page, test_id):
    page.click(f"section:has([data-testid={test_id}]) summary")
    rows = page.locator(f"[data-testid={test_id}] tbody tr")
    return {rows.nth(i).locator("td").nth(0).inner_text(): rows.nth(i).locator("td").nth(1).inner_text()
            for i in range(rows.count())}


@pytest.mark.parametrize("municipality", ["alkmaar", "heiloo"])
def test_staff_see_their_own_municipality_as_the_read_models_have_it(site, browser, municipality):
    url, tokens, store = site
    page = sign_in(browser, url, tokens[f"{municipality}-staff"])
    docs = store.documents("trajectory", [municipality])
    t, c = trajectory_figures(docs, YEAR), coaching_figures(docs, YEAR, TODAY)
    assert page.locator("header strong").inner_text().startswith(f"Tweespoor — {municipality.title()}")
    assert page.locator("[data-testid=kpi-referred] b").inner_text() == str(t["referred"])
    assert page.locator("[data-testid=kpi-placed] b").inner_text() == str(t["trajectories"]["placed"])
    assert numbers(page, "funnel-numbers") == {
        "Referred": str(t["referred"]), "Trajectory opened": str(t["trajectories"]["opened"]),
        "Placed in a job": str(t["trajectories"]["placed"]),
        "Employed after 12 months": str(c["outcomes"]["12_months"]["employed"])}
    bars = page.locator("[data-testid=funnel] rect")
    assert [float(bars.nth(i).get_attribute("data-value")) for i in range(4)][0] == t["referred"]
    assert page.locator("select[name=municipality]").count() == 0  # no view of the others
    twelve = c["outcomes"]["12_months"]
    assert numbers(page, "retention-numbers") == {
        "Employed": str(twelve["employed"]), "Same employer": str(twelve["same_employer"]),
        "Not employed": str(twelve["not_employed"]), "Unknown": str(twelve["unknown"])}
    # Each point: employed, not employed and unknown as the figures have them, adding up
    # to those that reached it; the share only over what is known.
    page.click("details:has([data-testid=outcome-numbers]) summary")
    rows = page.locator("[data-testid=outcome-numbers] tbody tr")
    shown = [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]
    expected = []
    for label, point in (("6 months", "6_months"), ("12 months", "12_months"), ("24 months", "24_months")):
        b = c["outcomes"][point]
        share = "–" if b["share_employed_of_known"] is None else f"{b['share_employed_of_known']:.0%}"
        expected.append([label, str(b["reached"]), str(b["employed"]), str(b["not_employed"]), str(b["unknown"]), share])
        assert b["employed"] + b["not_employed"] + b["unknown"] == b["reached"]
    assert shown == expected
    six = c["outcomes"]["6_months"]
    assert six["employed"] and six["not_employed"] and six["unknown"]  # the data shows all three
    share = page.locator("[data-testid=retention-share]").inner_text()
    assert f"{twelve['unknown']} unknown" in share
    page.close()


def share(value):
    return "–" if value is None else f"{value:.0%}"


def shown_rows(page, test_id):
    page.click(f"details:has([data-testid={test_id}]) summary")
    rows = page.locator(f"[data-testid={test_id}] tbody tr")
    return [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]


@pytest.mark.parametrize("municipality", ["alkmaar", "heiloo"])
def test_the_survival_curves_and_the_destinations_are_the_read_models(site, browser, municipality):
    url, tokens, store = site
    page = sign_in(browser, url, tokens[f"{municipality}-staff"])
    c = coaching_figures(store.documents("trajectory", [municipality]), YEAR, TODAY)
    curves = {p: rows for p, rows in c["survival"].items() if any(r["reached"] for r in rows)}
    assert curves and page.locator("svg[data-testid^=survival-]").count() == len(curves)
    for programme, rows in curves.items():
        reached = [r for r in rows if r["reached"]]
        for r in rows:
            assert r["employed"] + r["not_employed"] + r["unknown"] == r["reached"]
        for months in (6, 12, 24):  # the curve agrees with the outcomes at their points
            block = c["outcomes_by"]["programme"][programme][f"{months}_months"]
            row = rows[months - 1]
            assert (row["reached"], row["employed"], row["not_employed"], row["unknown"]) == (
                block["reached"], block["employed"], block["not_employed"], block["unknown"])
        chart = page.locator(f"svg[data-testid=survival-{programme}]")
        months = chart.locator("g.month")
        drawn = [{k: int(months.nth(i).get_attribute(f"data-{k}"))
                  for k in ("month", "reached", "employed", "not-employed", "unknown")} for i in range(months.count())]
        assert drawn == [{"month": r["month"], "reached": r["reached"], "employed": r["employed"],
                          "not-employed": r["not_employed"], "unknown": r["unknown"]} for r in reached]
        label = chart.get_attribute("aria-label")
        for i, r in enumerate(reached):
            text = (f"month {r['month']}: {r['reached']} reached, {r['employed']} employed, "
                    f"{r['not_employed']} not employed, {r['unknown']} unknown; "
                    f"{share(r['share_employed_of_reached'])} employed of all reached, "
                    f"{share(r['share_employed_of_known'])} of those known, {share(r['share_unknown'])} unknown")
            assert text in label
            assert months.nth(i).locator("title").text_content() == text  # on hover
            bar = float(months.nth(i).locator("rect.unknown").get_attribute("height"))
            assert bar == pytest.approx(180 * r["share_unknown"], abs=0.06)  # the unknown, drawn
        assert shown_rows(page, f"survival-numbers-{programme}") == [
            [str(r["month"]), str(r["reached"]), str(r["employed"]), str(r["not_employed"]), str(r["unknown"]),
             share(r["share_employed_of_reached"]), share(r["share_employed_of_known"]), share(r["share_unknown"])]
            for r in reached]
    # The coached re-integration placements show all three results, and months the
    # evidence windows do not cover (month 5) unknown for every one of them.
    rows = curves["reintegration"]
    assert any(r["employed"] for r in rows) and any(r["not_employed"] for r in rows)
    assert any(r["unknown"] for r in rows) and rows[4]["employed"] == 0 < rows[4]["reached"]

    destinations = lbu_figures(store.documents("offer", [municipality]), YEAR, TODAY)["destinations"]
    assert shown_rows(page, "destination-numbers") == [
        [f"{point.split('_')[0]} months", str(b["reached"]), str(b["working"]), str(b["back_on_benefit"]),
         str(b["still_unknown"])] for point, b in destinations.items()]
    chart = page.locator("svg[data-testid=destinations]")
    for point, b in destinations.items():
        assert b["working"] + b["back_on_benefit"] + b["still_unknown"] == b["reached"]
        months = point.split("_")[0]
        segments = chart.locator(f"rect[data-point='{months}']")
        assert {segments.nth(i).get_attribute("data-kind"): int(segments.nth(i).get_attribute("data-value"))
                for i in range(segments.count())} == (
            {k: b[k] for k in ("working", "back_on_benefit", "still_unknown")} if b["reached"] else {})
        text = f"{months} months: {b['still_unknown']} still unknown of {b['reached']} reached"
        assert text in chart.get_attribute("aria-label")
    three = destinations["3_months"]
    assert three["working"] and three["back_on_benefit"] and three["still_unknown"]  # the data shows all three
    assert destinations["12_months"]["reached"] == 0 and "not reached yet" in chart.inner_html()
    page.close()


def test_the_regional_role_sees_the_five_and_can_pick_one(site, browser):
    url, tokens, store = site
    page = sign_in(browser, url, tokens["region-staff"])
    everything = trajectory_figures(store.documents("trajectory"), YEAR)
    assert page.locator("[data-testid=kpi-referred] b").inner_text() == str(everything["referred"])
    volumes = numbers(page, "volume-numbers")
    assert volumes["Focus2Move"] == str(everything["volumes_by_programme"]["focus2move"])
    page.select_option("select[name=municipality]", "bergen")
    page.wait_for_url("**municipality=bergen**")
    bergen = trajectory_figures(store.documents("trajectory", ["bergen"]), YEAR)
    assert page.locator("[data-testid=kpi-referred] b").inner_text() == str(bergen["referred"])
    page.close()


def test_budget_used_and_contracted_volumes_are_shown_as_the_read_models_have_them(site, browser):
    url, tokens, store = site
    page = sign_in(browser, url, tokens["alkmaar-staff"])
    docs, reference = store.documents("trajectory", ["alkmaar"]), store.documents("tender")
    expected = []
    for b in budget_figures(docs, reference, ["alkmaar"], YEAR):
        expected.append([b["title"], "all sources", str(b["used_eur"]), str(b["budget_eur"])])
        labels = {"esf-3": "ESF-3", "wwb-werkdeel": "WWB work budget"}
        expected += [[b["title"], labels[s], str(round(u)), str(round(b["budget_by_source_eur"][s]))]
                     for s, u in b["used_by_source_eur"].items()]
    page.click("section:has([data-testid=budget]) summary")
    rows = page.locator("[data-testid=budget-numbers] tbody tr")
    shown = [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()] for i in range(rows.count())]
    assert shown == expected and any(row[1] == "ESF-3" for row in shown)
    assert page.locator("[data-testid=budget] rect").count() == len(expected)
    assert page.locator("[data-testid=kpi-waiting] b").inner_text() == str(waitlist_figures(docs, YEAR)["waiting"])
    page.close()
    region = sign_in(browser, url, tokens["region-staff"])
    region.click("section:has([data-testid=volumes]) summary")
    row = region.locator("[data-testid=volume-numbers] tbody tr", has_text="Focus2Move")
    assert row.locator("td").nth(2).inner_text() == "175"  # contracted, from the tender's data
    assert region.locator("[data-testid=volumes] line.marker").count() == 3
    region.close()


def test_a_wrong_token_does_not_open_the_dashboard(site, browser):
    url, _, _ = site
    page = browser.new_page()
    page.goto(f"{url}/dashboard")
    page.fill("input[name=token]", "not-a-token")
    page.click("button[type=submit]")
    assert "does not open the dashboard" in page.locator("p.error").inner_text()
    page.close()
