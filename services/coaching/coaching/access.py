"""Who sees and records which plans.

- A credential bound to a municipality (its case system, its coach, its staff) sees only
  that municipality's plans.
- A provider, and a coach employed by one, sees only the plans it coaches.
- Others are told a plan they may not see does not exist (404), so existence does not leak.

(No `from __future__ import annotations`: FastAPI reads the dependency annotations.)
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends

from contracts.access import Credentials, Principal, authenticated, require
from contracts.problems import Problem
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


def reader(credentials: Credentials) -> Callable[..., Principal]:
    """Who may read plans: coaching:read, or coaching:write (a coach, or a provider that
    coaches, reads what it records)."""
    caller = authenticated(credentials)

    def dependency(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not (principal.may(READ) or principal.may(WRITE)):
            raise Problem(403, "Forbidden", f"This credential carries neither {READ} nor {WRITE}.")
        return principal

    return dependency


def writer(credentials: Credentials) -> Callable[..., Principal]:
    """Who may record over bearer HTTP: a coach holding coaching:write, bound to a
    municipality or a provider (what is recorded names the coach)."""
    coach = require(credentials, WRITE, "coach")

    def dependency(principal: Annotated[Principal, Depends(coach)]) -> Principal:
        if coach_of(principal) is None:
            raise Problem(403, "Forbidden", "This coach credential names no municipality or provider.")
        return principal

    return dependency
