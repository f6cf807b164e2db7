"""Audit from a service's own store: which of its aggregates speak about a trajectory,
and the integration events they gave — rebuilt from the stored events, with the same
CloudEvent ids the relay published, and each stream's hash chain verified.

The relay notes (trajectory, aggregate) pairs in `audit_index` as it publishes, so a
trajectory's events are found without reading anyone else's: replay time depends on the
trajectory, not on the size of the store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Any

from contracts.actors import stamp_of
from contracts.chain import ChainReport, verify
from contracts.envelope import CloudEvent, envelope, source_urn


class AuditIndex:
    """(trajectory id, originator id) pairs, in the service's own database."""

    def __init__(self, recorder: Any) -> None:
        self._datastore = getattr(recorder, "datastore", None)
        self._memory: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        if self._datastore is not None:
            self._p = "%s" if "postgres" in type(self._datastore).__module__ else "?"
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute("CREATE TABLE IF NOT EXISTS audit_index (trajectory_id TEXT NOT NULL, "
                               "originator_id TEXT NOT NULL, PRIMARY KEY (trajectory_id, originator_id))")

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = sorted(set(pairs))
        if not pairs:
            return
        if self._datastore is None:
            with self._lock:
                for trajectory_id, originator_id in pairs:
                    self._memory.setdefault(trajectory_id, set()).add(originator_id)
            return
        p = self._p
        with self._datastore.transaction(commit=True) as cursor:
            for pair in pairs:
                cursor.execute(f"INSERT INTO audit_index (trajectory_id, originator_id) VALUES ({p}, {p}) "
                               "ON CONFLICT DO NOTHING", pair)

    def originators(self, trajectory_id: uuid.UUID) -> list[str]:
        if self._datastore is None:
            with self._lock:
                return sorted(self._memory.get(str(trajectory_id), ()))
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT originator_id FROM audit_index WHERE trajectory_id = {self._p} "
                           "ORDER BY originator_id", (str(trajectory_id),))
            return [row["originator_id"] if isinstance(row, dict) else row[0] for row in cursor.fetchall()]


def integration_events_of(app: Any, translate: Any, system: str, originator_id: Any) -> list[CloudEvent]:
    """What one aggregate's stored events said to the others, exactly as published."""
    out = []
    for stored in app.recorder.select_events(originator_id):
        domain_event = app.mapper.to_domain_event(stored)
        actor = stamp_of(app.mapper, stored).get("actor")
        for index, (municipality, payload) in enumerate(translate(domain_event)):
            out.append(envelope(
                payload, source=source_urn(municipality, system),
                origin=f"{stored.originator_id}/{stored.originator_version}/{index}",
                sequence=stored.originator_version, time=domain_event.timestamp, actor=actor))
    return out


def store_timeline(app: Any, index: AuditIndex, translate: Any, system: str,
                   trajectory_id: uuid.UUID) -> tuple[list[CloudEvent], list[ChainReport]]:
    """The trajectory's integration events from this service's store, and the chains."""
    events: list[CloudEvent] = []
    reports = []
    for originator in index.originators(trajectory_id):
        originator_id = uuid.UUID(originator)
        reports.append(verify(app.recorder, originator_id))
        events += [e for e in integration_events_of(app, translate, system, originator_id)
                   if e.data.trajectory_id == trajectory_id]
    return events, reports


def as_json(event: CloudEvent) -> dict[str, Any]:
    """A CloudEvent in structured JSON form."""
    return {**event.attributes.model_dump(mode="json", exclude_none=True),
            "data": event.data.model_dump(mode="json")}


def install_audit(api: Any, app: Any, translate: Any, system: str, credentials: Any,
                  processing_log: Any = None) -> None:
    """Adds `GET /audit/trajectories/{id}/events` for auditors to a service's API, and
    `GET /audit/processing-log` when the service keeps one."""
    from fastapi import Depends, Query

    from contracts.access import require

    auditor = require(credentials, "audit:read", "auditor")

    @api.get("/audit/trajectories/{trajectory_id}/events", tags=["audit"],
             responses={401: {"description": "No valid bearer token"},
                        403: {"description": "Auditors only"}})
    def audit_events(trajectory_id: uuid.UUID, caller: Any = Depends(auditor)) -> dict[str, Any]:
        """The trajectory's events as this service's store has them, with every stream's
        hash chain verified (the first event that does not fit is named)."""
        events, reports = store_timeline(app, app.audit_index, translate, system, trajectory_id)
        return {"service": system, "trajectory_id": str(trajectory_id),
                "events": [as_json(e) for e in events],
                "chains": [{"stream": r.originator_id, "events": r.events, "intact": r.intact,
                            "broken_at": r.broken_at, "reason": r.reason} for r in reports]}

    if processing_log is None:
        return

    @api.get("/audit/processing-log", tags=["audit"],
             responses={401: {"description": "No valid bearer token"},
                        403: {"description": "Auditors only"}})
    def processing(caller: Any = Depends(auditor),
                   trace_id: str = Query(pattern="^[0-9a-f]{32}$")) -> dict[str, Any]:
        """This service's part of one trace: what it processed, for which pseudonymous
        subject, with what status (no user identity is kept there)."""
        return {"service": system, "trace_id": trace_id, "records": processing_log.records(trace_id)}
