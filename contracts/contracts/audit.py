"""Audit from a service's own store: which of its aggregates speak about a trajectory,
and the integration events they gave — rebuilt from the stored events, with the same
CloudEvent ids the relay published, and each stream's hash chain verified.

The relay notes (trajectory, aggregate) pairs in `audit_index` as it publishes, so a
trajectory's events are found without reading anyone else's: replay time depends on the
trajectory, not on the size of the store. The auditors' routes are in `contracts.web.audit`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from contracts.actors import stamp_of
from contracts.chain import ChainReport, verify
from contracts.envelope import CloudEvent, envelope, source_urn
from contracts.sidetables import SideTable


class AuditIndex(SideTable):
    """(trajectory id, originator id) pairs beside the service's event store: the table
    `audit_index (trajectory_id, originator_id)`, both columns its key."""

    def __init__(self, recorder: Any) -> None:
        super().__init__(recorder, "audit_index", "trajectory_id", "originator_id", unique=False)

    def originators(self, trajectory_id: uuid.UUID) -> list[str]:
        return self.values(str(trajectory_id))


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
