"""Outcomes carry their evidence (issue 15, item 1).

The reported failure: a 2008 placement whose coach had contact only at week 2 was
reported "employed" at 6 and 12 months, because the job was never reported as ended, and
twelve-month retention showed 12 of 12. A result without evidence (no contact, no
registry answer) is "unknown", never "employed"; the figures keep employed, not employed
and unknown apart and add up: employed + not_employed + unknown = reached.
"""

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import events as ev
from contracts.access import Credentials
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.figures import coaching_figures, lbu_figures, outcome_figures, provider_results
from reporting.outcomes import Contact, Observation, Placement, add_months, outcome_at, placement_of
from reporting.store import ReportingStore
from services.reporting.tests.factory import WEEKS, coached, fold, refuser, wrap

START = dt.date(2008, 3, 3)
LATER = dt.date(2011, 1, 1)  # every point of a 2008 placement has passed


def week(n: int) -> dt.date:
    return START + dt.timedelta(weeks=n)


# --- the rule -------------------------------------------------------------------------


def test_contact_only_at_week_2_is_unknown_at_6_and_12_months_never_employed():
    placement = Placement(START, add_months(START, 12), contacts=(Contact(week(2), True),))
    for months in (6, 12, 24):
        outcome = outcome_at(placement, months)
        assert outcome.result == "unknown" and outcome.evidence is None, months


def test_the_week_26_check_in_is_the_evidence_for_six_months_and_week_52_for_twelve():
    contacts = tuple(Contact(week(n), True) for n in WEEKS)
    placement = Placement(START, add_months(START, 12), contacts=contacts)
    six, twelve = outcome_at(placement, 6), outcome_at(placement, 12)
    assert (six.result, six.evidence.kind, six.evidence.on) == ("employed", "check-in", week(26))
    assert (twelve.result, twelve.evidence.on) == ("employed", week(52))
    assert six.same_employer is True
    assert outcome_at(placement, 24).result == "unknown"  # the coaching year says nothing of month 24


def test_the_window_is_six_weeks_before_the_point_to_two_weeks_after():
    point = add_months(START, 6)
    coached = add_months(START, 12)
    inside = [point - dt.timedelta(weeks=6), point, point + dt.timedelta(days=14)]
    outside = [point - dt.timedelta(weeks=6, days=1), point + dt.timedelta(days=15), week(13)]
    for on in inside:
        assert outcome_at(Placement(START, coached, contacts=(Contact(on, True),)), 6).result == "employed", on
    for on in outside:
        assert outcome_at(Placement(START, coached, contacts=(Contact(on, True),)), 6).result == "unknown", on


def test_a_contact_without_a_point_of_view_on_the_point_does_not_count():
    """Within the coaching year, a check-in in the window speaks for the point only if the
    coach's job record does not change between them."""
    point = add_months(START, 6)
    lost = point + dt.timedelta(days=5)
    after = Contact(point + dt.timedelta(days=10), False)  # told of a loss that came after the point
    placement = Placement(START, add_months(START, 12), contacts=(after,), losses=(lost,))
    assert outcome_at(placement, 6).result == "unknown"
    before = Contact(point - dt.timedelta(days=20), True)
    placement = Placement(START, add_months(START, 12), contacts=(before,), losses=(point - dt.timedelta(days=3),))
    outcome = outcome_at(placement, 6)  # in work three weeks before, lost three days before
    assert (outcome.result, outcome.evidence.kind) == ("not-employed", "job-loss")


def test_a_job_lost_before_the_point_and_no_new_job_is_not_employed_on_the_coachs_report():
    lost = week(10)
    placement = Placement(START, add_months(START, 12), contacts=(Contact(week(2), True),), losses=(lost,))
    for months in (6, 12):
        outcome = outcome_at(placement, months)
        assert (outcome.result, outcome.evidence.kind, outcome.evidence.on) == ("not-employed", "job-loss", lost)
    # After the coaching year nobody records a new job: the loss says nothing of month 24.
    assert outcome_at(placement, 24).result == "unknown"


def test_a_new_job_after_a_loss_needs_its_own_contact():
    placement = Placement(START, add_months(START, 12), losses=(week(10),), new_jobs=((week(16), False),))
    assert outcome_at(placement, 6).result == "unknown"
    confirmed = Placement(START, add_months(START, 12), contacts=(Contact(week(26), True),),
                          losses=(week(10),), new_jobs=((week(16), False),))
    six = outcome_at(confirmed, 6)
    assert (six.result, six.same_employer) == ("employed", False)


def test_a_follow_up_contact_is_the_evidence_after_the_year():
    point = add_months(START, 24)
    placement = Placement(START, add_months(START, 12), losses=(week(10),),
                          contacts=(Contact(point + dt.timedelta(days=3), True, "follow-up", True),))
    outcome = outcome_at(placement, 24)
    assert (outcome.result, outcome.evidence.kind, outcome.same_employer) == ("employed", "follow-up", True)


def test_the_registry_answer_comes_first():
    six = add_months(START, 6)
    placement = Placement(START, add_months(START, 12), contacts=(Contact(week(26), True),),
                          observations=(Observation(6, six, False), Observation(24, add_months(START, 24), True)))
    assert (outcome_at(placement, 6).result, outcome_at(placement, 6).evidence.kind) == ("not-employed", "registry")
    assert outcome_at(placement, 24).result == "employed"
    assert outcome_at(placement, 12).result == "unknown"


def test_an_employer_confirmation_counts_before_a_check_in():
    point = add_months(START, 12)
    placement = Placement(START, point, contacts=(Contact(point, True, "employer"), Contact(week(52), True)))
    assert outcome_at(placement, 12).evidence.kind == "employer"


# --- through reporting's projection ---------------------------------------------------



def the_reported_year():
    """Twelve placements of 2008, with contact only at week 2 and nothing after."""
    return [e for i in range(12) for e in coached(start=START + dt.timedelta(days=7 * i), contacts=(2,))]


def test_the_reported_year_is_unknown_at_6_and_12_months_not_twelve_of_twelve():
    c = coaching_figures(fold(the_reported_year()), today=LATER)
    for point in ("6_months", "12_months", "24_months"):
        block = c["outcomes"][point]
        assert (block["reached"], block["employed"], block["not_employed"], block["unknown"]) == (12, 0, 0, 12)
        assert block["share_employed_of_known"] is None
    assert "retention_12_months" not in c  # the figure that claimed 12 of 12 is gone


def the_mix():
    """Five placements of 2008 with what proves (or does not prove) their results."""
    return (coached()  # every check-in with contact: employed at 6 and 12, by check-in
            + coached(contacts=(2,))  # contact at week 2 only: unknown
            + coached(lost_on=START + dt.timedelta(days=100), provider="dhg")  # not employed, the coach's report
            + coached(municipality="heiloo", programme="reintegration", contacts=(2, 6),
                      registry=((6, True), (12, False), (24, True)))  # the registry
            + coached(contacts=(2, 6, 13, 26), follow_ups=((add_months(START, 24), True),)))


def test_the_figures_add_up_and_claim_nothing_the_records_do_not_prove():
    c = coaching_figures(fold(the_mix()), today=LATER)
    o = c["outcomes"]
    assert o["as_of"] == LATER.isoformat()
    expected = {"6_months": (3, 1, 1), "12_months": (1, 2, 2), "24_months": (2, 0, 3)}
    for point, (employed, not_employed, unknown) in expected.items():
        block = o[point]
        assert (block["employed"], block["not_employed"], block["unknown"]) == (employed, not_employed, unknown), point
        assert block["employed"] + block["not_employed"] + block["unknown"] == block["reached"] == 5
        assert sum(block["by_evidence"].values()) == block["employed"] + block["not_employed"]
        known = block["employed"] + block["not_employed"]
        assert block["share_employed_of_known"] == round(employed / known, 4)
    assert o["6_months"]["by_evidence"] == {"registry": 1, "employer": 0, "check-in": 2, "follow-up": 0, "job-loss": 1}
    assert o["12_months"]["by_evidence"] == {"registry": 1, "employer": 0, "check-in": 1, "follow-up": 0, "job-loss": 1}
    assert o["24_months"]["by_evidence"] == {"registry": 1, "employer": 0, "check-in": 0, "follow-up": 1, "job-loss": 0}


def test_per_municipality_programme_and_provider_each_add_up():
    docs = fold(the_mix())
    by = coaching_figures(docs, today=LATER)["outcomes_by"]
    assert set(by["municipality"]) == {"alkmaar", "heiloo"}
    assert by["municipality"]["heiloo"]["12_months"]["by_evidence"]["registry"] == 1
    assert by["programme"]["focus2move"]["6_months"]["reached"] == 4
    assert by["provider"]["dhg"]["12_months"]["not_employed"] == 1
    for rows in by.values():
        for blocks in rows.values():
            for block in blocks.values():
                assert block["employed"] + block["not_employed"] + block["unknown"] == block["reached"]
    # Per municipality and programme the rows add up to the whole (one each per trajectory).
    total = coaching_figures(docs, today=LATER)["outcomes"]["12_months"]
    for key in ("municipality", "programme"):
        assert sum(b["12_months"]["unknown"] for b in by[key].values()) == total["unknown"]
    rows = {r["provider"]: r for r in provider_results(docs, today=LATER)}
    assert (rows["dhg"]["retained_after_12_months"], rows["dhg"]["not_employed_after_12_months"]) == (0, 1)
    agens = rows["agens"]
    assert (agens["retained_after_12_months"], agens["unknown_after_12_months"]) == (1, 2)


def test_only_the_points_reached_count():
    docs = fold(the_mix())
    o = outcome_figures(docs, today=add_months(START, 12) - dt.timedelta(days=1))["outcomes"]
    assert o["6_months"]["reached"] == 5 and o["12_months"]["reached"] == 0 and o["24_months"]["reached"] == 0
    assert o["12_months"]["share_employed_of_known"] is None


def test_a_registry_answer_and_a_follow_up_fold_in_whatever_order_they_arrive():
    events = coached(registry=((12, True),), follow_ups=((add_months(START, 24), False),))
    forward, backward = fold(events), fold(list(reversed(events)))
    assert forward[0]["registry"] == backward[0]["registry"]
    assert forward[0]["coaching"]["follow_ups"] == backward[0]["coaching"]["follow_ups"]
    placement = placement_of(forward[0])
    assert [o.months for o in placement.observations] == [12]
    # An answer about another (earlier) placement of the trajectory says nothing of this one.
    doc = forward[0]
    [answer] = doc["registry"]["placement-12-months"].values()
    answer["reference_date"] = (START - dt.timedelta(days=400)).isoformat()
    assert placement_of(doc).observations == ()


# --- the unknown-destination cohort ---------------------------------------------------




def test_where_the_unknown_destination_cohort_went_at_3_6_and_12_months():
    day = dt.date(2008, 2, 1)
    events = (refuser(day, ((3, True, False), (6, True, False), (12, True, True)))  # working (also on a benefit at 12)
              + refuser(day, ((3, False, True), (6, False, False)))  # a benefit, then nobody knows
              + refuser(day, (), returned_on=day + dt.timedelta(days=120))  # came back for a benefit in month 4
              + refuser(day))  # no answer at all
    offers = [d for d in fold(events) if d["kind"] == "offer"]
    assert len(offers) == 4  # the answers are on the offers' documents, not on trajectories of their own
    d = lbu_figures(offers, today=LATER)["destinations"]
    assert {p: (b["working"], b["back_on_benefit"], b["still_unknown"], b["not_observed"]) for p, b in d.items()} == {
        "3_months": (1, 1, 2, 2), "6_months": (1, 1, 2, 1), "12_months": (1, 1, 2, 2)}
    for block in d.values():
        assert block["working"] + block["back_on_benefit"] + block["still_unknown"] == block["reached"] == 4
    assert d["6_months"]["by_evidence"] == {"registry": 2, "benefit-administration": 0, "returned": 1}
    early = lbu_figures(offers, today=add_months(day, 6) - dt.timedelta(days=1))["destinations"]
    assert (early["3_months"]["reached"], early["6_months"]["reached"]) == (4, 0)


# --- the API states the identity -------------------------------------------------------


@pytest.fixture
def client(tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    store = ReportingStore(f"sqlite:///{tmp_path}/r.db")
    for offset, e in enumerate(the_reported_year() + the_mix()):
        store.apply(e, "t", 0, offset)
    yield TestClient(create_api(store, Credentials.from_file(path))), tokens
    store.close()


def test_the_api_answers_outcomes_that_add_up_and_states_the_identity(client):
    http, tokens = client
    answer = http.get("/figures", headers={"Authorization": f"Bearer {tokens['region-staff']}"})
    assert answer.status_code == 200
    twelve = answer.json()["coaching"]["outcomes"]["12_months"]
    assert (twelve["reached"], twelve["employed"], twelve["unknown"]) == (17, 1, 14)
    assert twelve["employed"] + twelve["not_employed"] + twelve["unknown"] == twelve["reached"]
    description = http.get("/openapi.json").json()["paths"]["/figures"]["get"]["description"]
    assert "employed + not_employed + unknown = reached" in description
