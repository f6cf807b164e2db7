"""The HTTP edge of `contracts.health`: one `Readiness` per FastAPI app (its process), and
what `/health` answers from it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from contracts.health import Readiness
from contracts.web.problems import problem_response


def readiness(api: FastAPI) -> Readiness:
    """The readiness of the process serving `api` (made on first use)."""
    if not isinstance(getattr(api.state, "readiness", None), Readiness):
        api.state.readiness = Readiness()
    return api.state.readiness  # type: ignore[no-any-return]


def health(api: FastAPI) -> Any:
    """What `/health` answers: ok, or 503 with why not."""
    reasons = readiness(api).reasons
    # Whether this replica does the store's once-only work (`contracts.lease`): a standby
    # is ready too. Absent for a service with nothing to lease.
    lease = getattr(api.state, "lease", None)
    held = {} if lease is None else {"lease": "held" if lease.held else "standby"}
    if not reasons:
        return {"status": "ok", **held}
    return problem_response(503, "Not ready", "A consumer cannot make progress.", headers={"Retry-After": "5"},
                            stalled=[{"component": c, "reason": r} for c, r in reasons.items()], **held)
