"""Coaching's HTTP API: thin, errors as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from contracts import problems
from coaching.application import CoachingApplication


def create_api(app: CoachingApplication) -> FastAPI:
    api = FastAPI(title="Tweespoor coaching", version="0.1.0",
                  description="The one-year job-coaching follow-up after placement.")
    problems.install(api)

    @api.get("/followed-trajectories")
    def followed() -> dict[str, Any]:
        per_municipality = app.followed_per_municipality()
        return {"total": sum(per_municipality.values()), "per_municipality": per_municipality}

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
