"""Provider coaches report through signed webhooks: the shared Standard Webhooks check
(`contracts.webhooks`) first, then the provider's own coachees only, then the body.

A webhook id seen before returns the first answer and records nothing again (the answer
is stored with the effect, in one transaction); the same id with another body is a 422.
Answers are 202 with the webhook id.

(No `from __future__ import annotations`: FastAPI reads the dependency annotations.)
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response

from contracts.access import Credentials
from contracts.idempotency import fingerprint
from contracts.idempotency import Answer, RequestKey
from contracts.problems import NotFound
from contracts.web.actors import acting
from contracts.web.webhooks import verified_webhook
from contracts.webhooks import WebhookMessage
from coaching.application import CoachingApplication
from coaching.coaches import provider_coach
from coaching.requests import (
    Body, CheckInBody, EmployerConfirmationBody, JobLossBody, PlacementBody, ReopenBody, parse,
)


def add_provider_routes(api: FastAPI, app: CoachingApplication, credentials: Credentials) -> None:
    Signed = Annotated[WebhookMessage, Depends(acting(verified_webhook(credentials)))]

    def handle(message: WebhookMessage, plan_id: uuid.UUID, action: str, model: type[Body],
               record: Callable[..., Answer], response: Response) -> dict[str, Any]:
        coach = provider_coach(message.provider.provider or "")
        summary = app.summary(plan_id)
        if summary.coach_id != coach:  # not this provider's coachee: as if it did not exist
            raise NotFound("Plan")
        body = parse(model, message.payload)
        keyed = RequestKey(f"webhook:{coach}", message.id,
                         fingerprint({"route": f"{action}/{plan_id}", "body": message.payload}))
        # A provider's message is accepted; resent, it gets the first answer again.
        answer = record(body, coach, keyed=keyed, answered_as=Answer.accepted)
        response.status_code = answer.status
        return {"id": message.id, **answer.body}

    @api.post("/providers/{provider}/plans/{plan_id}/check-ins", status_code=202,
              summary="A provider's coach records a check-in (signed webhook)")
    def check_in(plan_id: uuid.UUID, message: Signed, response: Response) -> dict[str, Any]:
        return handle(message, plan_id, "check-ins", CheckInBody, lambda body, coach, **how:
                      app.record_check_in(plan_id, recorded_by=coach, **how, **body.facts()), response)

    @api.post("/providers/{provider}/plans/{plan_id}/job-losses", status_code=202,
              summary="A provider's coach records a lost job (signed webhook)")
    def job_loss(plan_id: uuid.UUID, message: Signed, response: Response) -> dict[str, Any]:
        return handle(message, plan_id, "job-losses", JobLossBody, lambda body, coach, **how:
                      app.record_job_loss(plan_id, **body.model_dump(), **how), response)

    @api.post("/providers/{provider}/plans/{plan_id}/placements", status_code=202,
              summary="A provider's coach records a new job within the year (signed webhook)")
    def placement(plan_id: uuid.UUID, message: Signed, response: Response) -> dict[str, Any]:
        return handle(message, plan_id, "placements", PlacementBody, lambda body, coach, **how:
                      app.record_placement(plan_id, **body.model_dump(), **how), response)

    @api.post("/providers/{provider}/plans/{plan_id}/reopen-requests", status_code=202,
              summary="A provider's coach asks for the trajectory to be reopened (signed webhook)")
    def reopen(plan_id: uuid.UUID, message: Signed, response: Response) -> dict[str, Any]:
        return handle(message, plan_id, "reopen-requests", ReopenBody, lambda body, coach, **how:
                      app.request_reopen(plan_id, **body.model_dump(), requested_by=coach, **how), response)

    @api.post("/providers/{provider}/plans/{plan_id}/employer-confirmations", status_code=202,
              summary="A provider's coach records an employer's confirmation (signed webhook)")
    def employer_confirmation(plan_id: uuid.UUID, message: Signed, response: Response) -> dict[str, Any]:
        return handle(message, plan_id, "employer-confirmations", EmployerConfirmationBody,
                      lambda body, coach, **how: app.record_employer_confirmation(
                          plan_id, **body.model_dump(), recorded_by=coach, **how), response)
