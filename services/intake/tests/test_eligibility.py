import datetime as dt

import pytest

from intake.domain import client_pseudonym, is_valid_bsn
from intake.eligibility import REASONS, Applicant, reasons_against

F2M = frozenset({"alkmaar"})
REFERRED = dt.date(2026, 10, 1)


def applicant(programme, benefit, *, municipality="alkmaar", uwv=None, distance="large"):
    return Applicant(municipality, programme, benefit, uwv, distance, REFERRED)


@pytest.mark.parametrize("bsn", ["111222333", "123456782", "999999990"])
def test_bsns_that_pass_the_eleven_test(bsn):
    assert is_valid_bsn(bsn)


@pytest.mark.parametrize("bsn", ["123456789", "12345678", "1234567890", "abcdefghi", "000000000", ""])
def test_bsns_that_fail_the_eleven_test(bsn):
    assert not is_valid_bsn(bsn)


def test_the_pseudonym_is_stable_per_key_and_differs_between_keys():
    assert client_pseudonym("111222333", b"k1") == client_pseudonym("111222333", b"k1")
    assert client_pseudonym("111222333", b"k1") != client_pseudonym("111222333", b"k2")


@pytest.mark.parametrize("benefit", ["bijstand", "wao", "bijstand-wao"])
def test_social_activation_takes_bijstand_and_wao_with_a_large_distance(benefit):
    assert reasons_against(applicant("social-activation", benefit), F2M) == []
    assert reasons_against(applicant("social-activation", benefit, distance="very-large"), F2M) == []


@pytest.mark.parametrize("benefit", ["anw", "none"])
def test_social_activation_refuses_other_benefits(benefit):
    assert reasons_against(applicant("social-activation", benefit), F2M) == [
        "social-activation-needs-bijstand-or-wao"]


def test_social_activation_refuses_a_small_distance_to_the_labour_market():
    assert reasons_against(applicant("social-activation", "bijstand", distance="small"), F2M) == [
        "social-activation-needs-large-distance"]


@pytest.mark.parametrize("benefit", ["anw", "none"])
def test_reintegration_takes_nuggers_and_anw_registered_at_uwv(benefit):
    assert reasons_against(applicant("reintegration", benefit, uwv=dt.date(2026, 9, 1)), F2M) == []


def test_reintegration_needs_a_uwv_registration_on_or_before_the_referral():
    assert reasons_against(applicant("reintegration", "none"), F2M) == ["reintegration-needs-uwv-registration"]
    later = applicant("reintegration", "anw", uwv=REFERRED + dt.timedelta(days=1))
    assert reasons_against(later, F2M) == ["reintegration-needs-uwv-registration"]


@pytest.mark.parametrize("benefit", ["bijstand", "wao", "bijstand-wao"])
def test_reintegration_is_not_for_people_on_bijstand_or_wao(benefit):
    assert "reintegration-only-for-nugger-or-anw" in reasons_against(
        applicant("reintegration", benefit, uwv=dt.date(2026, 1, 1)), F2M)


def test_focus2move_takes_bijstand_in_a_municipality_that_runs_it():
    assert reasons_against(applicant("focus2move", "bijstand"), F2M) == []
    assert reasons_against(applicant("focus2move", "bijstand-wao"), F2M) == []


def test_focus2move_refuses_other_benefits_and_other_municipalities():
    assert reasons_against(applicant("focus2move", "anw"), F2M) == ["focus2move-needs-bijstand"]
    assert reasons_against(applicant("focus2move", "bijstand", municipality="heiloo"), F2M) == [
        "focus2move-not-offered"]
    assert reasons_against(applicant("focus2move", "bijstand", municipality="heiloo"),
                           frozenset({"alkmaar", "heiloo"})) == []


def test_every_reason_has_a_sentence_for_the_referrer():
    for programme, benefit in [("social-activation", "none"), ("reintegration", "wao"),
                               ("focus2move", "anw")]:
        for code in reasons_against(applicant(programme, benefit, distance="small",
                                              municipality="bergen"), F2M):
            assert REASONS[code]
