"""The HTTP edge of `contracts.access`: FastAPI dependencies that turn a bearer token into
the calling `Principal`, or refuse with 401 (no valid token) or 403 (a scope or kind the
credential lacks). (No `from __future__ import annotations`: FastAPI reads the dependency
annotations below as objects.)"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contracts.access import Credentials, Kind, Principal
from contracts.problems import Problem

_bearer = HTTPBearer(auto_error=False, description="A token issued per client application.")


def authenticated(credentials: Credentials) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller, or a 401 problem."""

    def dependency(
        presented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = credentials.authenticate(presented.credentials) if presented else None
        if principal is None:
            raise Problem(401, "Unauthorized", "A valid bearer token is required.",
                          headers={"WWW-Authenticate": "Bearer"})
        return principal

    # contracts.web.limits finds this on a route and checks the token before the body is read.
    dependency.tweespoor_credentials = credentials  # type: ignore[attr-defined]
    return dependency


def require(credentials: Credentials, scope: str, *kinds: Kind) -> Callable[..., Principal]:
    """A FastAPI dependency: the caller, if it holds `scope` (and is of one of `kinds`)."""
    caller = authenticated(credentials)

    def dependency(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not principal.may(scope) or (kinds and principal.kind not in kinds):
            raise Problem(403, "Forbidden", f"This credential does not carry the scope {scope}.")
        return principal

    return dependency
