"""The HTTP edge of `contracts.audit`: the auditors' routes of every service's API."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends, FastAPI, Query

from contracts.audit import as_json, chain_json, checkpoint_status, store_audit, store_timeline, streams_timeline
from contracts.web.auth import require

AUDITORS_ONLY = {401: {"description": "No valid bearer token"}, 403: {"description": "Auditors only"}}


def install_audit(api: FastAPI, app: Any, translate: Any, system: str, credentials: Any,
                  processing_log: Any = None) -> None:
    """Adds `GET /audit/trajectories/{id}/events` for auditors to a service's API, and
    `GET /audit/processing-log` when the service keeps one."""
    auditor = require(credentials, "audit:read", "auditor")

    @api.get("/audit/trajectories/{trajectory_id}/events", tags=["audit"], responses=AUDITORS_ONLY)
    def audit_events(trajectory_id: uuid.UUID, caller: Any = Depends(auditor)) -> dict[str, Any]:
        """The trajectory's events as this service's store has them, with every stream's
        hash chain verified (the first event that does not fit is named)."""
        events, reports = store_timeline(app, app.audit_index, translate, system, trajectory_id)
        return {"service": system, "trajectory_id": str(trajectory_id),
                "events": [as_json(e) for e in events],
                "chains": [chain_json(r) for r in reports], "checkpoints": checkpoint_status(app)}

    @api.get("/audit/store", tags=["audit"], responses=AUDITORS_ONLY)
    def audit_store(caller: Any = Depends(auditor)) -> dict[str, Any]:
        """The whole store against its signed checkpoints (published outside the store to
        the audit topic): the notification log's hash at every signed position and every
        signed stream head. A chain recomputed with write access to the database, a stream
        or event removed or inserted, shows here without replaying Kafka."""
        return {"service": system, **store_audit(app)}

    if hasattr(app, "reference_streams"):

        @api.get("/audit/reference-data/events", tags=["audit"], responses=AUDITORS_ONLY)
        def audit_reference_data(caller: Any = Depends(auditor)) -> dict[str, Any]:
            """The reference data (tender, budgets, programmes, contracts, capacity) as this
            service's store has it, with every stream's hash chain verified and compared with
            its signed checkpoint."""
            events, reports = streams_timeline(app, translate, system, app.reference_streams())
            return {"service": system, "events": [as_json(e) for e in events],
                    "chains": [chain_json(r) for r in reports if r.events or not r.intact],
                    "checkpoints": checkpoint_status(app)}

    if processing_log is None:
        return

    @api.get("/audit/processing-log", tags=["audit"], responses=AUDITORS_ONLY)
    def processing(caller: Any = Depends(auditor),
                   trace_id: str = Query(pattern="^[0-9a-f]{32}$")) -> dict[str, Any]:
        """This service's part of one trace: what it processed, for which pseudonymous
        subject, with what status (no user identity is kept there)."""
        return {"service": system, "trace_id": trace_id, "records": processing_log.records(trace_id)}
