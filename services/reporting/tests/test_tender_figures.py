"""Waitlists, volumes against the contracted ones, budget used against the budget with
its ESF-3 and WWB shares, and coach changes: folded from events, weighed against the
tender's reference data as trajectory publishes it (never constants in reporting)."""

import datetime as dt
import uuid

from contracts import events as ev
from reporting.documents import TENDER, key_of
from reporting.figures import Filters, budget_figures, coaching_figures, volume_figures, waitlist_figures
from services.reporting.tests.factory import D, placed_trajectory, tender, waitlisted, wrap
from services.reporting.tests.test_read_models import fold

FIVE = ["alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo"]


def split(docs):
    return ([d for d in docs if d["kind"] == "trajectory"], [d for d in docs if d["kind"] == TENDER])


def test_reference_data_gets_documents_of_its_own_belonging_to_no_municipality():
    docs = fold(tender()).values()
    assert {d["kind"] for d in docs} == {TENDER} and {d["municipality"] for d in docs} == {None}
    assert {d["fact"] for d in docs} == {"budget", "programme", "contract"}
    assert key_of(tender()[0].data) == (TENDER, str(tender()[0].data.trajectory_id))


def test_who_waits_now_and_who_waited_per_discipline():
    events = (waitlisted() + waitlisted(admitted_on=D + dt.timedelta(days=12))
              + waitlisted(admitted_on=D + dt.timedelta(days=20)) + waitlisted(discipline="Trainingen"))
    trajectories, _ = split(fold(events).values())
    w = waitlist_figures(trajectories)
    assert (w["waiting"], w["waitlisted"]) == (2, 4)
    diagnose = next(r for r in w["by_discipline"] if r["discipline"] == "Diagnose")
    assert diagnose == {"programme": "social-activation", "discipline": "Diagnose", "waiting": 1,
                        "waitlisted": 3, "refused": 0, "median_days_waited": 16}
    assert waitlist_figures(trajectories, Filters(discipline="Trainingen"))["waitlisted"] == 1


def test_a_trajectory_that_ends_or_is_refused_waits_no_longer():
    ended, refused = waitlisted(), waitlisted()
    t1, t2 = ended[0].data.trajectory_id, refused[0].data.trajectory_id
    ended.append(wrap(ev.TrajectoryClosed(trajectory_id=t1, reason="moved-away", closed_on=D)))
    refused.append(wrap(ev.AssignmentRefused(trajectory_id=t2, discipline="Diagnose", refused_on=D,
                                             reason="outside-contract-period")))
    trajectories, _ = split(fold(ended + refused).values())
    w = waitlist_figures(trajectories)
    assert (w["waiting"], w["waitlisted"], w["by_discipline"][0]["refused"]) == (0, 2, 1)


def test_volumes_are_weighed_against_the_contracted_yearly_volumes_from_the_tender():
    events = tender() + placed_trajectory() + placed_trajectory() + placed_trajectory(programme="social-activation")
    trajectories, reference = split(fold(events).values())
    rows = {r["programme"]: r for r in volume_figures(trajectories, reference)}
    assert rows["focus2move"]["opened"] == 2 and rows["focus2move"]["contracted_yearly"] == 175
    assert (rows["social-activation"]["contracted_yearly"], rows["reintegration"]["contracted_yearly"]) == (325, 75)
    half_year = Filters(start=dt.date(2026, 1, 1), end=dt.date(2026, 6, 30))
    assert {r["programme"]: r["contracted_for_period"] for r in volume_figures(trajectories, reference, half_year)} \
        == {"social-activation": 161.2, "reintegration": 37.2, "focus2move": 86.8}
    changed = wrap(ev.ProgrammeVolumeSet(trajectory_id=uuid.UUID(next(d["id"] for d in reference
                                                                       if d.get("programme") == "focus2move")),
                                         programme="focus2move", yearly_volume=250, set_on=dt.date(2026, 6, 1)))
    trajectories, reference = split(fold(events + [changed]).values())
    assert {r["programme"]: r["contracted_yearly"] for r in volume_figures(trajectories, reference)}["focus2move"] == 250


def test_budget_used_is_each_assignment_at_its_tariff_against_the_shares_and_sources():
    events = (tender() + placed_trajectory() + placed_trajectory(provider="dhg")
              + placed_trajectory("heiloo", "social-activation", provider="inova"))
    trajectories, reference = split(fold(events).values())
    rows = {b["budget"]: b for b in budget_figures(trajectories, reference, FIVE)}
    f2m, tender_2005 = rows["focus2move-2008"], rows["tender-2005"]
    assert (f2m["used_eur"], f2m["budget_eur"], f2m["municipalities"]) == (6000, 2_100_000, ["alkmaar"])
    assert f2m["used_by_source_eur"] == {"wwb-werkdeel": 6000}
    assert (tender_2005["used_eur"], tender_2005["budget_eur"]) == (2000, 5_000_000)
    assert tender_2005["used_by_source_eur"] == {"esf-3": 800.0, "wwb-werkdeel": 1200.0}
    assert tender_2005["budget_by_source_eur"] == {"esf-3": 2_000_000.0, "wwb-werkdeel": 3_000_000.0}
    assert tender_2005["used_per_municipality_eur"]["heiloo"] == 2000
    heiloo = {b["budget"]: b for b in budget_figures(trajectories, reference, ["heiloo"])}
    assert list(heiloo) == ["tender-2005"]  # Focus2Move is Alkmaar's alone
    assert heiloo["tender-2005"]["budget_eur"] == 300_000
    assert heiloo["tender-2005"]["budget_by_source_eur"] == {"esf-3": 120_000.0, "wwb-werkdeel": 180_000.0}
    assert budget_figures(trajectories, reference, FIVE, Filters(provider="dhg"))[0]["used_eur"] == 3000


def test_an_assignment_delivered_twice_commits_the_tariff_once():
    events = tender() + placed_trajectory()
    trajectories, reference = split(fold(events + [events[len(tender()) + 2]]).values())
    assert budget_figures(trajectories, reference, ["alkmaar"])[0]["used_eur"] == 3000


def test_the_coach_now_is_the_one_of_the_latest_change_whatever_the_order():
    events = placed_trajectory()
    started = events[5].data
    changes = [wrap(ev.CoachChanged(trajectory_id=started.trajectory_id, plan_id=started.plan_id,
                                    coach_id=coach, changed_on=on), "coaching")
               for coach, on in (("provider:dhg", D + dt.timedelta(days=60)),
                                 ("municipality:alkmaar", D + dt.timedelta(days=90)))]
    for order in (events + changes, events + changes[::-1]):
        trajectories, _ = split(fold(order).values())
        c = coaching_figures(trajectories)
        assert c["coach_changes"] == 2 and c["plans_per_coach"] == {"municipality:alkmaar": 1}
