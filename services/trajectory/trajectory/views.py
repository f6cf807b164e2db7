"""What the trajectory service shows: its aggregates as the plain dicts the API answers
with (dates as ISO strings, ids as strings), and nothing else."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from contracts.access import Principal
from trajectory.contracting import DisciplineCapacity, Programme, ProviderContract, Register
from trajectory.domain import Trajectory
from trajectory.subscriptions import Delivery, Subscription


def iso(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: iso(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [iso(v) for v in value]
    return value


def trajectory_view(t: Trajectory, caller: Principal | None) -> dict[str, Any]:
    own = caller.provider if caller is not None and caller.kind == "provider" else None
    assignments = {d: a for d, a in t.assignments.items() if own is None or a["provider"] == own}
    view = {
        "trajectory_id": str(t.id), "referral_id": str(t.referral_id), "client_id": str(t.client_id),
        "municipality": t.municipality, "programme": t.programme, "state": t.state,
        "allowed_next": t.allowed_next(), "opened_on": t.opened_on.isoformat(),
        "assignments": [{"discipline": d, "provider": a["provider"], "since": a["since"].isoformat()}
                        for d, a in assignments.items()],
        "work_track": iso(t.work),
        "obstacles": [{"obstacle_id": i} | iso(o) for i, o in t.obstacles.items()],
        "failed_mediations": iso(t.failed_mediations),
        "schooling": iso(t.schooling), "plan": iso(t.plan),
        "placement": iso(t.placement),
        "closing": iso({k: v for k, v in t.closing.items() if k != "released"}) if t.closing else None,
        "version": t.version,
    }
    if own is None:  # municipalities and auditors see the whole picture
        view["waiting"] = {d: s.isoformat() for d, s in t.waiting.items()}
        view["refusals"] = dict(t.refusals)
    return view


def valid_on(e: Any) -> dt.date | None:
    """A fact's valid date: its first date field (`opened_on`, `starts_on`, …)."""
    for name in (*getattr(type(e), "__annotations__", {}), *vars(e)):
        value = getattr(e, name, None)
        if name.endswith("_on") and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
    return None


def fact_view(e: Any) -> dict[str, Any]:
    facts = {k: v for k, v in vars(e).items()
             if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")}
    return {"fact": type(e).__name__, "version": e.originator_version,
            "recorded_at": e.timestamp.isoformat(), **iso(facts), "on": iso(valid_on(e))}


def programme_view(p: Programme, register: Register) -> dict[str, Any]:
    budget = register.budget_of(p.slug)
    return {
        "slug": p.slug, "name": p.name, "starts_on": p.starts_on.isoformat(),
        "ends_on": p.ends_on.isoformat(), "yearly_volume": p.yearly_volume,
        "municipalities": p.municipalities, "disciplines": p.disciplines,
        "entry_discipline": p.entry_discipline, "obstacle_disciplines": p.obstacle_disciplines,
        "employer": p.employer, "budget": budget["slug"] if budget else None, "changes": p.changes,
    }


def contract_view(c: ProviderContract, capacity: DisciplineCapacity) -> dict[str, Any]:
    return {
        "contract_id": str(c.id), "provider": c.provider, "programme": c.programme,
        "discipline": c.discipline, "municipalities": c.municipalities,
        "starts_on": c.starts_on.isoformat(), "ends_on": c.ends_on.isoformat(),
        "places": c.places, "in_use": capacity.in_use(c.provider), "tariff_eur": c.tariff_eur,
        "version": c.version,
    }


def subscription_view(s: Subscription) -> dict[str, Any]:
    return {"subscription_id": str(s.id), "provider": s.provider, "callback_url": s.callback_url,
            "event_types": s.event_types, "created_at": s.created_at.isoformat(),
            "state": "active" if s.is_active else "cancelled",
            "cancelled_at": s.cancelled_at.isoformat() if s.cancelled_at else None}


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {
        "delivery_id": str(d.id), "subscription_id": str(d.subscription_id),
        "message_id": d.message_id, "event_id": d.event_id, "event_type": d.event_type,
        "trajectory_id": str(d.trajectory_id), "state": d.state,
        "created_at": d.created_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "attempts": [a | {"at": a["at"].isoformat()} for a in d.attempts],
    }
