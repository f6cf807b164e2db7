"""The providers' side of the API: signed reports in, subscriptions and deliveries out.

Reports are Standard Webhooks, verified before anything is parsed or stored; the same
`webhook-id` returns its first answer. Subscriptions and deliveries are read and managed
with the provider's bearer credential, each provider seeing only its own.
(No `from __future__ import annotations`: FastAPI must see the dependency aliases as objects.)
"""

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.access import Credentials, Principal
from contracts.idempotency import fingerprint
from contracts.idempotency import RequestKey
from contracts.problems import MEDIA_TYPE, Forbidden, NotFound
from contracts.web.actors import acting
from contracts.web.auth import require
from contracts.web.problems import responses
from contracts.web.webhooks import verified_webhook
from contracts.webhooks import WebhookMessage
from trajectory import provider_reports
from trajectory.application import TrajectoryApplication
from trajectory.usecases.notifications import EVENT_TYPES

def errors(*extra: int, base: tuple[int, ...] = (401, 403, 404, 422, 503)) -> dict[int | str, dict[str, Any]]:
    return responses(*base, *extra, described={401: "No valid bearer token (or, for webhooks, no valid signature)"})


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(min_length=8, max_length=500, description="Where to POST notifications (https)")
    event_types: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES),
                                   description="CloudEvent types: " + ", ".join(EVENT_TYPES))
    secret: str = Field(min_length=30, max_length=200, repr=False,
                        description="Your Standard Webhooks secret (whsec_...); signs every notification")


def provider_routes(app: TrajectoryApplication, credentials: Credentials) -> APIRouter:
    router = APIRouter(tags=["providers"])
    provider = Annotated[Principal, Depends(acting(require(credentials, "trajectories:read", "provider")))]
    verified = Annotated[WebhookMessage, Depends(acting(verified_webhook(credentials)))]

    @router.post("/providers/{provider}/trajectories/{trajectory_id}/reports", status_code=202,
                 responses=errors(409, 413, 415, base=(401, 404, 422, 503)))
    def report(trajectory_id: str, message: verified) -> Any:
        """Report progress on a trajectory assigned to you, as a signed webhook. Body: one of
        the report types (see `type`). The same `webhook-id` again returns the first answer
        and changes nothing; the same id with another body is a 422."""
        if not message.provider.may("trajectories:report"):
            raise Forbidden(detail="This credential does not carry the scope trajectories:report.")
        try:
            trajectory = uuid.UUID(trajectory_id)
        except ValueError:
            raise NotFound("Trajectory") from None
        parsed = provider_reports.parse(message.payload)
        slug = message.provider.provider or ""
        key = RequestKey(f"webhook:{slug}", message.id, fingerprint(message.body))
        status, body = app.report(slug, trajectory, parsed, key)
        if status >= 400:
            return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)
        return JSONResponse(body, status_code=status)

    @router.get("/caseload", responses=errors())
    def caseload(caller: provider) -> list[dict[str, Any]]:
        """The trajectories assigned to you now, per discipline."""
        return app.caseload(caller.provider or "")

    @router.post("/subscriptions", status_code=201, responses=errors())
    def subscribe(request: SubscriptionRequest, caller: provider) -> dict[str, Any]:
        """Hear about your trajectories: thin notifications (type, trajectory, a `dataref` to
        read it with your own credential), signed with your secret, retried with backoff."""
        return app.subscribe(caller.provider or "", **request.model_dump())

    @router.get("/subscriptions", responses=errors())
    def subscriptions(caller: provider) -> list[dict[str, Any]]:
        return app.subscriptions(caller.provider or "")

    @router.get("/subscriptions/{subscription_id}", responses=errors())
    def subscription(subscription_id: uuid.UUID, caller: provider) -> dict[str, Any]:
        return app.subscription(subscription_id, caller.provider or "")

    @router.delete("/subscriptions/{subscription_id}", responses=errors())
    def cancel(subscription_id: uuid.UUID, caller: provider) -> dict[str, Any]:
        """Cancel: nothing more is sent, and the secret is deleted."""
        return app.cancel_subscription(subscription_id, caller.provider or "")

    @router.get("/subscriptions/{subscription_id}/deliveries", responses=errors())
    def deliveries(subscription_id: uuid.UUID, caller: provider,
                   state: Literal["pending", "delivered", "dead-lettered", "cancelled"] | None = None,
                   ) -> list[dict[str, Any]]:
        """Every delivery with every attempt (time, status code or error, duration)."""
        return app.deliveries(subscription_id, caller.provider or "", state)

    @router.get("/deliveries/{delivery_id}", responses=errors())
    def delivery(delivery_id: uuid.UUID, caller: provider) -> dict[str, Any]:
        return app.delivery(delivery_id, caller.provider or "")

    @router.post("/deliveries/{delivery_id}/retry", responses=errors(409))
    def retry(delivery_id: uuid.UUID, caller: provider) -> dict[str, Any]:
        """Another round of attempts for a dead-lettered delivery."""
        return app.retry_delivery(delivery_id, caller.provider or "")

    return router
