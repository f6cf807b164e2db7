"""Who may enter which programme: the rules of the 2005/2008 source texts.

Each rule that fails gives a reason code the referrer sees. Which municipalities run
Focus2Move is configuration (in 2008 only Alkmaar did).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ON_BIJSTAND = ("bijstand", "bijstand-wao")
ON_BIJSTAND_OR_WAO = ("bijstand", "wao", "bijstand-wao")
NUGGER_OR_ANW = ("none", "anw")
LARGE_DISTANCE = ("large", "very-large")

REASONS: dict[str, str] = {
    "social-activation-needs-bijstand-or-wao":
        "Social activation is for people on bijstand and/or WAO.",
    "social-activation-needs-large-distance":
        "Social activation is for people with a large distance to the labour market.",
    "reintegration-only-for-nugger-or-anw":
        "Re-integration to work is for people without a benefit (Nuggers) and ANW recipients.",
    "reintegration-needs-uwv-registration":
        "Re-integration to work needs a registration at UWV (formerly CWI) on or before the referral.",
    "focus2move-needs-bijstand": "Focus2Move is for people on bijstand.",
    "focus2move-not-offered": "This municipality does not run Focus2Move.",
}


@dataclass(frozen=True)
class Applicant:
    """What eligibility looks at: no personal data is needed to decide."""

    municipality: str
    programme: str
    benefit: str
    uwv_registered_on: dt.date | None
    distance_to_labour_market: str
    referred_on: dt.date


def reasons_against(applicant: Applicant, focus2move_municipalities: frozenset[str]) -> list[str]:
    """The reason codes that keep the applicant out; empty when eligible."""
    reasons: list[str] = []
    if applicant.programme == "social-activation":
        if applicant.benefit not in ON_BIJSTAND_OR_WAO:
            reasons.append("social-activation-needs-bijstand-or-wao")
        if applicant.distance_to_labour_market not in LARGE_DISTANCE:
            reasons.append("social-activation-needs-large-distance")
    elif applicant.programme == "reintegration":
        if applicant.benefit not in NUGGER_OR_ANW:
            reasons.append("reintegration-only-for-nugger-or-anw")
        registered = applicant.uwv_registered_on
        if registered is None or registered > applicant.referred_on:
            reasons.append("reintegration-needs-uwv-registration")
    elif applicant.programme == "focus2move":
        if applicant.benefit not in ON_BIJSTAND:
            reasons.append("focus2move-needs-bijstand")
        if applicant.municipality not in focus2move_municipalities:
            reasons.append("focus2move-not-offered")
    return reasons
