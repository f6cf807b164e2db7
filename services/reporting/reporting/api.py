"""Reporting's HTTP API: the read models as JSON, errors as problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from contracts import problems
from reporting.store import ReportingStore


def create_api(store: ReportingStore) -> FastAPI:
    api = FastAPI(title="Tweespoor reporting", version="0.1.0",
                  description="Read models rebuilt from Kafka.")
    problems.install(api)

    @api.get("/event-counts")
    def event_counts() -> dict[str, Any]:
        counts = store.event_counts()
        return {"total": sum(counts.values()), "per_type": counts}

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
