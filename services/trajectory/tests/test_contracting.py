"""Contracts as data and capacity, in the domain: the shipped tender reproduces the
source texts; capacity assigns within places, waits in order, refuses outside the
contract period; every change to reference data is an audited event."""

from __future__ import annotations

import datetime as dt
import tomllib
import uuid
from importlib import resources

import pytest

from trajectory.contracting import (
    ContractError, DisciplineCapacity, Lot, Programme, ProviderContract, available,
)
from trajectory.tender import TenderFileError, load, parse

ALL = ("alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo")
PERIOD = (dt.date(2006, 1, 1), dt.date(2008, 4, 30))


def lot(provider="agens", places=1, municipalities=ALL, period=PERIOD) -> Lot:
    return Lot(provider, tuple(municipalities), period[0], period[1], places)


# --- the tender from the source texts ---------------------------------------------------


def test_the_shipped_tender_reproduces_the_2005_tender_and_focus2move():
    tender = load()
    social, reintegration, focus = (tender.programme(s) for s in
                                    ("social-activation", "reintegration", "focus2move"))
    assert social.disciplines == ("Diagnose", "Trainingen", "Maatschappelijke participatie",
                                  "Budgetteringscursussen", "Woonbegeleiding", "Verslavingszorg",
                                  "Psychosociale zorg", "Dagbesteding")
    assert reintegration.disciplines == ("Voortraject", "Aanbodversterking", "Arbeidsritme",
                                         "Directe bemiddeling en Nazorg")
    assert (social.yearly_volume, reintegration.yearly_volume, focus.yearly_volume) == (325, 75, 175)
    assert (social.starts_on, social.ends_on) == PERIOD == (reintegration.starts_on, reintegration.ends_on)
    assert set(social.municipalities) == set(ALL) and focus.municipalities == ("alkmaar",)
    assert focus.employer.startswith("WNK")
    assert {"debts", "addiction", "psychosocial"} <= set(focus.obstacle_disciplines)

    def holders(programme):
        return {c.provider for c in tender.contracts if c.programme == programme}

    assert holders("social-activation") == {"actief-talent", "agens", "aim", "alexander-calder", "dhg",
                                            "inova", "iwa-wurkympuls", "nieuwland", "serin"}
    assert holders("reintegration") == {"agens", "dhg", "iwa-wurkympuls", "nieuwland"}
    for programme in (social, reintegration, focus):  # every discipline is contracted everywhere
        for discipline in programme.disciplines:
            covered = {m for c in tender.contracts if (c.programme, c.discipline) == (programme.slug, discipline)
                       for m in c.municipalities}
            assert covered == set(programme.municipalities), (programme.slug, discipline)

    [budget] = [b for b in tender.budgets if b.slug == "tender-2005"]
    assert budget.total_eur == 5_000_000 and budget.shares["alkmaar"] == 3_000_000
    assert set(budget.sources) == {"esf-3", "wwb-werkdeel"}
    assert set(budget.programmes) == {"social-activation", "reintegration"}


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw["contract"][0].update(provider="randstad"), "unknown provider"),
    (lambda raw: raw["contract"][0].update(discipline="Koken"), "no such discipline"),
    (lambda raw: raw["contract"][0].update(municipalities=["amsterdam"]), "unknown municipalities"),
    (lambda raw: raw["contract"].append(dict(raw["contract"][0])), "same discipline twice"),
    (lambda raw: raw["budget"][0].update(total_eur=4_000_000), "do not add up"),
    (lambda raw: raw["programme"][2].update(entry_discipline="Koken"), "unknown disciplines"),
    (lambda raw: raw["programme"][2].pop("yearly_volume"), "missing"),
])
def test_a_data_file_that_does_not_add_up_fails_loudly(change, message):
    raw = tomllib.loads((resources.files("trajectory") / "data" / "tender-2005.toml").read_text())
    change(raw)
    with pytest.raises(TenderFileError, match=message):
        parse(raw, source="broken.toml")


# --- who may take a trajectory on, and when ------------------------------------------------


def test_only_lots_covering_the_municipality_on_the_date_are_available():
    lots = [lot("agens", municipalities=("alkmaar",)), lot("dhg", municipalities=("bergen",))]
    assert available(lots, "alkmaar", dt.date(2007, 5, 1)) == ([lots[0]], None)
    assert available(lots, "heiloo", dt.date(2007, 5, 1)) == ([], "no-contract-for-municipality")
    assert available(lots, "alkmaar", dt.date(2008, 5, 1)) == ([], "outside-contract-period")
    assert available(lots, "alkmaar", dt.date(2005, 12, 31)) == ([], "outside-contract-period")
    assert available(lots, "alkmaar", PERIOD[1])[1] is None  # the last day still counts


def test_assignment_goes_to_the_lot_with_most_room_then_to_who_had_fewest():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("dhg", places=2), lot("agens", places=2)]
    on = dt.date(2007, 1, 8)
    picks = [capacity.decide(uuid.uuid4(), "alkmaar", on, lots) for _ in range(4)]
    assert picks == ["agens", "dhg", "agens", "dhg"]
    assert capacity.decide(uuid.uuid4(), "alkmaar", on, lots) is None  # full: waits


def test_a_full_discipline_waits_in_order_and_freed_places_go_to_the_first_in_line():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("agens", places=1)]
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert capacity.decide(first, "alkmaar", dt.date(2007, 1, 8), lots) == "agens"
    assert capacity.decide(second, "heiloo", dt.date(2007, 1, 9), lots) is None
    assert capacity.decide(third, "alkmaar", dt.date(2007, 1, 10), lots) is None
    assert [w["trajectory_id"] for w in capacity.waiting] == [str(second), str(third)]

    assert capacity.release(first, "agens", dt.date(2007, 3, 1))
    admitted, refused = capacity.admit(dt.date(2007, 3, 1), lambda m, on: available(lots, m, on),
                                       wants=lambda t: True)
    assert [(a.trajectory_id, a.outcome, a.on) for a in admitted] == [(second, "agens", dt.date(2007, 3, 1))]
    assert refused == [] and capacity.holder_of(second) == "agens"
    assert [w["trajectory_id"] for w in capacity.waiting] == [str(third)]


def test_a_place_freed_before_someone_began_to_wait_is_theirs_from_when_they_wait():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("agens", places=1)]
    holder, waiting = uuid.uuid4(), uuid.uuid4()
    capacity.decide(holder, "alkmaar", dt.date(2007, 1, 8), lots)
    capacity.decide(waiting, "alkmaar", dt.date(2007, 2, 1), lots)
    capacity.release(holder, "agens", dt.date(2007, 1, 20))  # reported late
    [admitted], _ = capacity.admit(dt.date(2007, 1, 20), lambda m, on: available(lots, m, on), lambda t: True)
    assert admitted.on == dt.date(2007, 2, 1)


def test_a_waiting_trajectory_is_refused_once_its_contracts_have_ended_and_skipped_if_no_longer_wanted():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("agens", places=1)]
    holder, gone, late = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    capacity.decide(holder, "alkmaar", dt.date(2008, 3, 1), lots)
    capacity.decide(gone, "alkmaar", dt.date(2008, 3, 2), lots)
    capacity.decide(late, "alkmaar", dt.date(2008, 3, 3), lots)
    capacity.release(holder, "agens", dt.date(2008, 5, 6))
    admitted, refused = capacity.admit(dt.date(2008, 5, 6), lambda m, on: available(lots, m, on),
                                       wants=lambda t: t != gone)
    assert admitted == []
    assert [(r.trajectory_id, r.outcome) for r in refused] == [(late, "outside-contract-period")]
    assert capacity.waiting == []


def test_lots_serve_only_their_own_municipalities_from_a_shared_waitlist():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("agens", places=1, municipalities=("alkmaar",)), lot("dhg", places=1, municipalities=("bergen",))]
    a1, a2, b1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    capacity.decide(a1, "alkmaar", dt.date(2007, 1, 8), available(lots, "alkmaar", dt.date(2007, 1, 8))[0])
    assert capacity.decide(a2, "alkmaar", dt.date(2007, 1, 9), available(lots, "alkmaar", dt.date(2007, 1, 9))[0]) is None
    assert capacity.decide(b1, "bergen", dt.date(2007, 1, 9), available(lots, "bergen", dt.date(2007, 1, 9))[0]) == "dhg"
    assert capacity.in_use("agens") == capacity.in_use("dhg") == 1


def test_withdrawing_and_releasing_what_is_not_there_changes_nothing():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    assert not capacity.withdraw(uuid.uuid4(), "trajectory-ended")
    assert not capacity.release(uuid.uuid4(), "agens", dt.date(2007, 1, 1))
    assert capacity.version == 1
    with pytest.raises(ContractError):
        held = uuid.uuid4()
        capacity.decide(held, "alkmaar", dt.date(2007, 1, 1), [lot()])
        capacity.decide(held, "alkmaar", dt.date(2007, 1, 1), [lot()])


# --- reference data changes are audited ------------------------------------------------------


def test_changing_places_volume_or_period_is_recorded_with_who_and_why():
    contract = ProviderContract("agens", "reintegration", "Voortraject", municipalities=["alkmaar"],
                                starts_on=PERIOD[0], ends_on=PERIOD[1], places=7, tariff_eur=1400,
                                reason="tender", by="seed")
    contract.change_places(9, dt.date(2007, 1, 1), "more referrals in Alkmaar", "region-contract-manager")
    contract.extend(dt.date(2008, 12, 31), "bridging until the next tender", "region-contract-manager")
    assert [c["change"] for c in contract.changes] == ["awarded", "places", "ends_on"]
    assert contract.changes[1] | {} == {"change": "places", "from": 7, "to": 9, "on": "2007-01-01",
                                       "reason": "more referrals in Alkmaar", "by": "region-contract-manager"}
    assert contract.lot.places == 9 and contract.lot.ends_on == dt.date(2008, 12, 31)
    with pytest.raises(ContractError):
        contract.change_places(-1, dt.date(2007, 1, 1), "typo", "x")
    with pytest.raises(ContractError):
        contract.extend(dt.date(2008, 1, 1), "shorter is not an extension", "x")

    programme = Programme("reintegration", name="Reïntegratie", starts_on=PERIOD[0], ends_on=PERIOD[1],
                          yearly_volume=75, municipalities=list(ALL), disciplines=["Voortraject"],
                          entry_discipline="Voortraject", reopen_discipline="Voortraject",
                          obstacle_disciplines={}, employer=None, by="seed")
    programme.change_volume(90, dt.date(2007, 1, 1), "council decision", "region-contract-manager")
    assert programme.yearly_volume == 90 and programme.changes[0]["from"] == 75


def test_the_waitlist_is_ordered_by_when_each_began_to_wait_not_by_arrival():
    capacity = DisciplineCapacity("reintegration", "Voortraject")
    lots = [lot("agens", places=0)]
    late, early, same_day = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    capacity.decide(late, "alkmaar", dt.date(2007, 3, 5), lots)
    capacity.decide(early, "alkmaar", dt.date(2007, 3, 1), lots)
    capacity.decide(same_day, "alkmaar", dt.date(2007, 3, 5), lots)
    assert [w["trajectory_id"] for w in capacity.waiting] == [str(early), str(late), str(same_day)]
