"""What the API shows of intake's aggregates: summaries without personal data, each with
its history (valid date and recorded time apart, see `intake.history`)."""

from __future__ import annotations

from typing import Any

from intake.domain import Referral
from intake.eligibility import REASONS
from intake.history import history_of
from intake.lbu import JobOffer
from intake.registry import RegistryRequest


def referral_summary(store: Any, referral: Referral) -> dict[str, Any]:
    """`store`: where the referral's stored events are read (the application)."""
    return {
        "referral_id": str(referral.id),
        "trajectory_id": str(referral.trajectory_id) if referral.status != "rejected" else None,
        "client_id": str(referral.client_id),
        "municipality": referral.municipality,
        "programme": referral.programme,
        "route": referral.route,
        "status": referral.status,
        "reasons": [{"code": c, "reason": REASONS.get(c, c)} for c in referral.reasons],
        "referred_on": referral.referred_on.isoformat(),
        "history": history_of(store, referral),
    }


def offer_summary(store: Any, offer: JobOffer) -> dict[str, Any]:
    return {
        "offer_id": str(offer.id),
        "client_id": str(offer.client_id),
        "municipality": offer.municipality,
        "state": offer.state,
        "respond_by": offer.respond_by.isoformat() if offer.respond_by else None,
        "referral_id": str(offer.referral_id) if offer.referral_id else None,
        "allowed_next": list(offer.allowed_next()),
        "history": history_of(store, offer),
    }


def registry_summary(request: RegistryRequest) -> dict[str, Any]:
    points: dict[str, int] = {}
    for line in request.lines.values():
        points[line["point"]] = points.get(line["point"], 0) + 1
    return {
        "request_id": str(request.id), "municipality": request.municipality,
        "on": request.on.isoformat(), "built_on": request.built_on.isoformat(),
        "lines": len(request.lines), "points": points, "answered": len(request.answers),
        "imports": list(request.imports),
        "observations": [
            {"line": n, "client_id": line["client_id"], "trajectory_id": line["trajectory_id"],
             "offer_id": line["offer_id"], "point": line["point"], "observe_on": line["observe_on"],
             "answer": request.answers.get(n)}
            for n, line in sorted(request.lines.items())],
    }
