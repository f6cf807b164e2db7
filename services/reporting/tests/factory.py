"""Builds CloudEvents for reporting's tests."""

import datetime as dt
import itertools
import uuid

from contracts import events as ev
from contracts.envelope import envelope, source_urn
from reporting.documents import key_of, new_document, project
from reporting.outcomes import add_months

_n = itertools.count()
D = dt.date(2026, 3, 2)
WEEKS = (2, 6, 13, 26, 39, 52)  # coaching's default check-in weeks


def wrap(data, service="trajectory", municipality="alkmaar"):
    return envelope(data, source=source_urn(municipality, f"tweespoor-{service}"),
                    origin=f"test/{next(_n)}", sequence=1, time=dt.datetime(2026, 3, 2, tzinfo=dt.UTC))


def placed_trajectory(municipality="alkmaar", programme="focus2move", provider="agens",
                      retained=True, referred_on=D):
    t, r, c, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    return [
        wrap(ev.ClientReferred(trajectory_id=t, referral_id=r, client_id=c, municipality=municipality,
                               programme=programme, benefit="bijstand", referred_on=referred_on), "intake", municipality),
        wrap(ev.TrajectoryOpened(trajectory_id=t, referral_id=r, client_id=c, municipality=municipality,
                                 programme=programme, opened_on=referred_on), municipality=municipality),
        wrap(ev.ProviderAssigned(trajectory_id=t, provider=provider, discipline="Directe bemiddeling en Nazorg",
                                 assigned_on=referred_on), municipality=municipality),
        wrap(ev.ContractStarted(trajectory_id=t, employer="WNK", starts_on=referred_on + dt.timedelta(days=10)),
             municipality=municipality),
        wrap(ev.PlacedInJob(trajectory_id=t, municipality=municipality, employer="Bakkerij", hours_per_week=32,
                            contract_type="fixed-term", starts_on=referred_on + dt.timedelta(days=40)),
             municipality=municipality),
        wrap(ev.CoachingStarted(trajectory_id=t, plan_id=p, municipality=municipality, coach_id=f"provider:{provider}",
                                job_starts_on=referred_on + dt.timedelta(days=40),
                                ends_on=referred_on + dt.timedelta(days=405), check_ins_due=()),
             "coaching", municipality),
        wrap(ev.CoachingCompleted(trajectory_id=t, plan_id=p, completed_on=referred_on + dt.timedelta(days=405),
                                  employed_at_end=retained, same_employer=retained), "coaching", municipality),
    ]


def rejected(municipality="bergen", reason="focus2move-not-offered"):
    return [wrap(ev.ReferralRejected(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                                     municipality=municipality, programme="focus2move", reason_code=reason,
                                     reason_codes=(reason,), rejected_on=D), "intake", municipality)]


TENDER = uuid.UUID("0b670e5f-e3d8-574a-9796-ef5be7161942")


def tender():
    """The tender's reference data as trajectory publishes it: two budgets, the three
    yearly volumes, and a few awarded contracts with their tariffs."""
    ids = (uuid.uuid5(TENDER, str(i)) for i in itertools.count())
    five = ("alkmaar", "bergen", "castricum", "heerhugowaard", "heiloo")
    facts = [
        ev.BudgetSet(trajectory_id=next(ids), budget="tender-2005", title="Tender 2005",
                     programmes=("social-activation", "reintegration"), total_eur=5_000_000,
                     sources_eur={"esf-3": 2_000_000, "wwb-werkdeel": 3_000_000},
                     shares_eur={"alkmaar": 3_000_000, "heerhugowaard": 950_000, "castricum": 400_000,
                                 "bergen": 350_000, "heiloo": 300_000}),
        ev.BudgetSet(trajectory_id=next(ids), budget="focus2move-2008", title="Focus2Move",
                     programmes=("focus2move",), total_eur=2_100_000,
                     sources_eur={"wwb-werkdeel": 2_100_000}, shares_eur={"alkmaar": 2_100_000}),
        *(ev.ProgrammeVolumeSet(trajectory_id=next(ids), programme=p, yearly_volume=v, set_on=dt.date(2006, 1, 1))
          for p, v in (("social-activation", 325), ("reintegration", 75), ("focus2move", 175))),
        *(ev.ContractAwarded(trajectory_id=next(ids), provider=provider, programme=programme,
                             discipline="Directe bemiddeling en Nazorg", municipalities=five,
                             starts_on=dt.date(2006, 1, 1), ends_on=dt.date(2030, 12, 31), places=50,
                             tariff_eur=tariff)
          for provider, programme, tariff in (("agens", "focus2move", 3000), ("dhg", "focus2move", 3000),
                                              ("agens", "social-activation", 2000),
                                              ("inova", "social-activation", 2000))),
    ]
    return [wrap(f) for f in facts]


def waitlisted(municipality="castricum", discipline="Diagnose", provider="agens", on=D, admitted_on=None):
    """A social-activation trajectory that waits for a place, and gets one if `admitted_on`."""
    t, r, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [
        wrap(ev.TrajectoryOpened(trajectory_id=t, referral_id=r, client_id=c, municipality=municipality,
                                 programme="social-activation", opened_on=on), municipality=municipality),
        wrap(ev.AssignmentWaitlisted(trajectory_id=t, discipline=discipline, waitlisted_on=on),
             municipality=municipality),
    ]
    if admitted_on:
        events.append(wrap(ev.ProviderAssigned(trajectory_id=t, provider=provider, discipline=discipline,
                                               assigned_on=admitted_on), municipality=municipality))
    return events


def coached(municipality="alkmaar", programme="focus2move", provider="agens", *, start=dt.date(2008, 3, 3),
            contacts=WEEKS, lost_on=None, follow_ups=(), registry=()):
    """A placement as the services publish it: referral, trajectory, placement, a coaching
    plan with its check-ins (contact at the weeks in `contacts`, none at the others), a
    job loss, the scheduler's six-month point and end of the year -- both "employed"
    whenever no loss was reported, as coaching works them out -- and follow-ups and
    registry answers (months, employed) if given."""
    t, c, p = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ends, six = add_months(start, 12), add_months(start, 6)
    events = [
        ev.TrajectoryOpened(trajectory_id=t, referral_id=uuid.uuid4(), client_id=c, municipality=municipality,
                            programme=programme, opened_on=start - dt.timedelta(days=60)),
        ev.ProviderAssigned(trajectory_id=t, provider=provider, discipline="Directe bemiddeling en Nazorg",
                            assigned_on=start - dt.timedelta(days=60)),
        ev.PlacedInJob(trajectory_id=t, municipality=municipality, employer="Bakkerij", hours_per_week=32,
                       contract_type="fixed-term", starts_on=start),
        ev.CoachingStarted(trajectory_id=t, plan_id=p, municipality=municipality, coach_id=f"provider:{provider}",
                           job_starts_on=start, ends_on=ends, six_month_on=six, grace_days=7,
                           check_ins_due=tuple(start + dt.timedelta(weeks=w) for w in WEEKS)),
    ]
    for n, w in enumerate(WEEKS, start=1):
        held = start + dt.timedelta(weeks=w)
        if lost_on and held >= lost_on:
            break
        if w in contacts:
            events.append(ev.CheckInRecorded(trajectory_id=t, plan_id=p, check_in=n, held_on=held,
                                             contact_made=True, still_employed=True))
        else:
            events.append(ev.CheckInOverdue(trajectory_id=t, plan_id=p, check_in=n, due_on=held))
    if lost_on:
        events.append(ev.JobLost(trajectory_id=t, plan_id=p, lost_on=lost_on, reason="dismissed"))
    events += [
        ev.SixMonthPointReached(trajectory_id=t, plan_id=p, measured_on=six,
                                employed=not lost_on or lost_on > six, same_employer=True),
        ev.CoachingCompleted(trajectory_id=t, plan_id=p, completed_on=ends, employed_at_end=not lost_on,
                             same_employer=not lost_on),
    ]
    events += [ev.FollowUpContactRecorded(trajectory_id=t, plan_id=p, contacted_on=on, contact_made=True,
                                          employed=employed) for on, employed in follow_ups]
    for months, employed in registry:
        events.append(ev.EmploymentObserved(
            trajectory_id=t, observation_id=uuid.uuid4(), client_id=c, municipality=municipality, cohort="placed",
            point=f"placement-{months}-months", months_after=months, reference_date=start,
            observed_on=add_months(start, months), period_start=add_months(start, months) - dt.timedelta(days=30),
            period_end=add_months(start, months), employed=employed))
    return [wrap(e, "intake" if isinstance(e, ev.EmploymentObserved) else "coaching", municipality) for e in events]


def refuser(refused_on, answers=(), returned_on=None, municipality="alkmaar"):
    """An LBU refuser who entered the unknown-destination cohort, with registry and
    benefit-administration answers ((months, employed, on_benefit), ...)."""
    t, o, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    common = {"trajectory_id": t, "offer_id": o, "client_id": c, "municipality": municipality}
    events = [ev.JobOfferMade(**common, offered_on=refused_on - dt.timedelta(days=3)),
              ev.JobOfferRefused(**common, refused_on=refused_on, respond_by=refused_on + dt.timedelta(weeks=13)),
              ev.DestinationUnknown(**common, since=refused_on + dt.timedelta(weeks=13))]
    for months, employed, on_benefit in answers:
        point = add_months(refused_on, months)
        line = {**common, "observation_id": uuid.uuid4(), "cohort": "lbu-unknown-destination",
                "point": f"lbu-{months}-months", "months_after": months, "reference_date": refused_on,
                "observed_on": point, "period_start": point - dt.timedelta(days=30), "period_end": point}
        events += [ev.EmploymentObserved(**line, employed=employed),
                   ev.BenefitObserved(**line, on_benefit=on_benefit, benefit_kind="bijstand" if on_benefit else None)]
    if returned_on:
        events.append(ev.ReturnedForBenefit(**common, returned_on=returned_on, from_unknown_destination=True))
    return [wrap(e, "intake", municipality) for e in events]


def fold(events):
    """The documents reporting's projection makes of `events`."""
    docs = {}
    for e in events:
        key = key_of(e.data, e.attributes)
        project(docs.setdefault(key, new_document(*key)), e.data, e.attributes)
    return list(docs.values())
