"""Audit from a service's own store: which of its aggregates speak about a trajectory,
and the integration events they gave — rebuilt from the stored events, with the same
CloudEvent ids the relay published, and each stream's hash chain verified.

The relay notes (trajectory, aggregate) pairs in `audit_index` as it publishes, so a
trajectory's events are found without reading anyone else's: replay time depends on the
trajectory, not on the size of the store.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

from eventsourcing.persistence import PersistenceError

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
            for attempt in range(10):  # replicas starting at once race to create it (pg_type)
                try:
                    with self._datastore.transaction(commit=True) as cursor:
                        cursor.execute("CREATE TABLE IF NOT EXISTS audit_index (trajectory_id TEXT NOT NULL, "
                                       "originator_id TEXT NOT NULL, PRIMARY KEY (trajectory_id, originator_id))")
                    break
                except PersistenceError:
                    if attempt == 9:
                        raise
                    time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))

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


def verify_stream(app: Any, originator_id: Any) -> ChainReport:
    """One stream's chain, and its head against the signed checkpoint when one is known."""
    if hasattr(app, "verify_chain"):
        return app.verify_chain(originator_id)
    return verify(app.recorder, originator_id)


def streams_timeline(app: Any, translate: Any, system: str, originator_ids: Iterable[Any],
                     trajectory_id: uuid.UUID | None = None) -> tuple[list[CloudEvent], list[ChainReport]]:
    """The integration events of the streams named (of one trajectory, if given), and their
    chains. A broken stream's events are not decoded: the report names where it breaks."""
    events: list[CloudEvent] = []
    reports = []
    for originator_id in originator_ids:
        report = verify_stream(app, originator_id)
        reports.append(report)
        if report.intact:
            events += [e for e in integration_events_of(app, translate, system, originator_id)
                       if trajectory_id is None or e.data.trajectory_id == trajectory_id]
    return events, reports


def store_timeline(app: Any, index: AuditIndex, translate: Any, system: str,
                   trajectory_id: uuid.UUID) -> tuple[list[CloudEvent], list[ChainReport]]:
    """The trajectory's integration events from this service's store, and the chains."""
    return streams_timeline(app, translate, system,
                            [uuid.UUID(o) for o in index.originators(trajectory_id)], trajectory_id)


def chain_json(report: ChainReport) -> dict[str, Any]:
    anchor = report.anchor
    return {"stream": report.originator_id, "events": report.events, "intact": report.intact,
            "broken_at": report.broken_at, "reason": report.reason,
            "anchored": {"version": anchor.version, "checkpoint": anchor.checkpoint} if anchor else None}


def checkpoint_status(app: Any) -> dict[str, Any] | None:
    """What the service knows of its signed checkpoints (None: none read yet, so chains
    are checked against themselves only)."""
    index = getattr(app, "anchors", None)
    if index is None:
        return None
    latest = index.latest or {}
    return {"caught_up": index.caught_up, "store": index.store, "signed_position": latest.get("to"),
            "signed_at": latest.get("time"), "key": latest.get("key"), "streams": len(index.heads)}


def store_audit(app: Any) -> dict[str, Any]:
    """The whole store against its signed checkpoints: the notification log's hash at every
    signed position, and every signed head still at its version. Reads every event once."""
    from contracts.checkpoints import verify_log

    index = getattr(app, "anchors", None)
    if index is None:
        return {"checkpoints": None, "intact": None, "log": None, "heads": None}
    log = verify_log(app.recorder, index)
    broken = []
    for stream, anchor in sorted(dict(index.heads).items()):
        found = app.recorder.select_events(uuid.UUID(stream), gt=anchor.version - 1, lte=anchor.version)
        if not found or bytes(found[0].state)[67:131] != anchor.head.encode():
            broken.append({"stream": stream, "version": anchor.version,
                           "reason": "missing" if not found else "differs from the head a signed checkpoint holds"})
    return {"checkpoints": checkpoint_status(app), "intact": log["intact"] and not broken, "log": log,
            "heads": {"checked": len(index.heads), "broken": broken}}


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
                "chains": [chain_json(r) for r in reports], "checkpoints": checkpoint_status(app)}

    @api.get("/audit/store", tags=["audit"],
             responses={401: {"description": "No valid bearer token"},
                        403: {"description": "Auditors only"}})
    def audit_store(caller: Any = Depends(auditor)) -> dict[str, Any]:
        """The whole store against its signed checkpoints (published outside the store to
        the audit topic): the notification log's hash at every signed position and every
        signed stream head. A chain recomputed with write access to the database, a stream
        or event removed or inserted, shows here without replaying Kafka."""
        return {"service": system, **store_audit(app)}

    if hasattr(app, "reference_streams"):

        @api.get("/audit/reference-data/events", tags=["audit"],
                 responses={401: {"description": "No valid bearer token"},
                            403: {"description": "Auditors only"}})
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

    @api.get("/audit/processing-log", tags=["audit"],
             responses={401: {"description": "No valid bearer token"},
                        403: {"description": "Auditors only"}})
    def processing(caller: Any = Depends(auditor),
                   trace_id: str = Query(pattern="^[0-9a-f]{32}$")) -> dict[str, Any]:
        """This service's part of one trace: what it processed, for which pseudonymous
        subject, with what status (no user identity is kept there)."""
        return {"service": system, "trace_id": trace_id, "records": processing_log.records(trace_id)}
