"""Who sees and records which plans.

- A credential bound to a municipality (its case system, its coach, its staff) sees only
  that municipality's plans.
- A provider, and a coach employed by one, sees only the plans it coaches.
- Others are told a plan they may not see does not exist (404), so existence does not leak.

Plain rules over a `Principal`; who may read or record at all (the credential's scopes)
is the HTTP edge's (`coaching.api`).
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.access import Principal
from coaching.coaches import municipality_coach, provider_coach
from coaching.views import PlanSummary

READ, WRITE = "coaching:read", "coaching:write"


def coach_of(principal: Principal) -> str | None:
    """The coach a caller records as: its provider, or its municipality's own coach."""
    if principal.provider:
        return provider_coach(principal.provider)
    if principal.kind == "coach" and principal.municipality:
        return municipality_coach(principal.municipality)
    return None


def may_see(principal: Principal, municipality: str, coach_id: str) -> bool:
    if not principal.sees_municipality(municipality):
        return False
    if principal.provider:
        return coach_id == provider_coach(principal.provider)
    return True


def sees(principal: Principal) -> Callable[[PlanSummary], bool]:
    return lambda s: may_see(principal, s.municipality, s.coach_id)

