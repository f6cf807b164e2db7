"""The trajectory service's HTTP API: thin, errors as problem+json."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI

from contracts import problems
from trajectory.application import TrajectoryApplication


def create_api(app: TrajectoryApplication) -> FastAPI:
    api = FastAPI(title="Tweespoor trajectory", version="0.1.0",
                  description="Trajectories from referral to placement.")
    problems.install(api)

    @api.get("/trajectories/{trajectory_id}")
    def trajectory(trajectory_id: uuid.UUID) -> dict[str, Any]:
        return app.trajectory(trajectory_id)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
