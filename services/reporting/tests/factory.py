"""Builds CloudEvents for reporting's tests."""

import datetime as dt
import itertools
import uuid

from contracts import events as ev
from contracts.envelope import envelope, source_urn

_n = itertools.count()
D = dt.date(2026, 3, 2)


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
