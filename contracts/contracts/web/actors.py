"""The HTTP edge of `contracts.actors`: a route names who acts by depending on
`acting(<its auth dependency>)`. (No `from __future__ import annotations`: FastAPI must
see the wrapped dependency as an object.)"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends

from contracts.actors import act_as


def acting(dependency: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps an authentication dependency so that what the route records names the caller.

    It is async on purpose: it runs in the request's own task, and a sync route's worker
    thread starts from a copy of that task's context, so it sees the actor."""

    async def as_actor(caller: Annotated[Any, Depends(dependency)]) -> Any:
        act_as(caller)
        return caller

    return as_actor
