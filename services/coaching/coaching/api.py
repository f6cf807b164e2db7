"""Coaching's HTTP API for coaches and the municipal case systems: thin, errors as
problem+json. Providers record through signed webhooks (`coaching.webhooks`).

(No `from __future__ import annotations`: FastAPI reads the dependency annotations.)
"""

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Response

from contracts.access import Credentials, Principal
from contracts.idempotency import fingerprint
from contracts.idempotency import Answer, RequestKey
from contracts.municipalities import Municipality
from contracts.problems import Forbidden, NotFound
from contracts.web import problems as web_problems
from contracts.web.actors import acting
from contracts.web.auth import authenticated, require
from contracts.web.health import health as ready
from coaching.access import READ, WRITE, coach_of, may_see, sees
from coaching.application import CoachingApplication
from coaching.requests import (
    Body, CheckInBody, EmployerConfirmationBody, FollowUpBody, JobLossBody, PlacementBody, ReopenBody,
)
from coaching.webhooks import add_provider_routes

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                              description="Send the same key to retry safely.")]
CoachId = Annotated[str, Path(pattern=r"^(provider|municipality):[a-z0-9-]{1,64}$",
                              description='"provider:<slug>" or "municipality:<name>"')]


def reader(credentials: Credentials) -> Callable[..., Principal]:
    """Who may read plans: coaching:read, or coaching:write (a coach, or a provider that
    coaches, reads what it records)."""
    caller = authenticated(credentials)

    def dependency(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not (principal.may(READ) or principal.may(WRITE)):
            raise Forbidden(detail=f"This credential carries neither {READ} nor {WRITE}.")
        return principal

    return dependency


def writer(credentials: Credentials) -> Callable[..., Principal]:
    """Who may record over bearer HTTP: a coach holding coaching:write, bound to a
    municipality or a provider (what is recorded names the coach)."""
    coach = require(credentials, WRITE, "coach")

    def dependency(principal: Annotated[Principal, Depends(coach)]) -> Principal:
        if coach_of(principal) is None:
            raise Forbidden(detail="This coach credential names no municipality or provider.")
        return principal

    return dependency


def create_api(app: CoachingApplication, credentials: Credentials) -> FastAPI:
    api = FastAPI(title="Tweespoor coaching", version="0.2.0",
                  description="The one-year job-coaching follow-up after placement.")
    web_problems.install(api)
    Reader = Annotated[Principal, Depends(reader(credentials))]
    Coach = Annotated[Principal, Depends(acting(writer(credentials)))]

    def visible_plan(principal: Principal, plan_id: uuid.UUID) -> None:
        summary = app.summary(plan_id)
        if not may_see(principal, summary.municipality, summary.coach_id):
            raise NotFound("Plan")

    def keyed(principal: Principal, key: str | None, route: str, body: Body) -> RequestKey | None:
        if key is None:
            return None
        request = fingerprint({"route": route, "body": body.model_dump(mode="json")})
        return RequestKey(f"coach:{principal.id}", key, request)

    def answer(response: Response, result: Answer) -> dict[str, Any]:
        response.status_code = result.status  # created, or the first answer again
        return result.body

    @api.get("/plans", summary="The plans the caller may see")
    def plans(principal: Reader, trajectory_id: uuid.UUID | None = None,
              status: Literal["running", "completed"] | None = None) -> dict[str, Any]:
        return {"plans": app.plans(sees(principal), trajectory_id=trajectory_id, status=status)}

    @api.get("/plans/{plan_id}", summary="One plan: schedule, check-ins, jobs, outcome")
    def plan(plan_id: uuid.UUID, principal: Reader) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return app.plan(plan_id)

    @api.post("/plans/{plan_id}/check-ins", status_code=201, summary="Record a check-in")
    def check_in(plan_id: uuid.UUID, body: CheckInBody, principal: Coach, response: Response,
                 idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return answer(response, app.record_check_in(
            plan_id, recorded_by=coach_of(principal),
            keyed=keyed(principal, idempotency_key, f"check-ins/{plan_id}", body), **body.facts()))

    @api.post("/plans/{plan_id}/job-losses", status_code=201, summary="Record that the job was lost")
    def job_loss(plan_id: uuid.UUID, body: JobLossBody, principal: Coach, response: Response,
                 idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return answer(response, app.record_job_loss(
            plan_id, **body.model_dump(),
            keyed=keyed(principal, idempotency_key, f"job-losses/{plan_id}", body)))

    @api.post("/plans/{plan_id}/placements", status_code=201,
              summary="Record a new job within the year (coaching goes on to the original end)")
    def placement(plan_id: uuid.UUID, body: PlacementBody, principal: Coach, response: Response,
                  idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return answer(response, app.record_placement(
            plan_id, **body.model_dump(),
            keyed=keyed(principal, idempotency_key, f"placements/{plan_id}", body)))

    @api.post("/plans/{plan_id}/reopen-requests", status_code=201,
              summary="Ask the trajectory service to reopen the trajectory")
    def reopen(plan_id: uuid.UUID, body: ReopenBody, principal: Coach, response: Response,
               idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return answer(response, app.request_reopen(
            plan_id, **body.model_dump(), requested_by=coach_of(principal),
            keyed=keyed(principal, idempotency_key, f"reopen-requests/{plan_id}", body)))

    @api.post("/plans/{plan_id}/follow-up-contacts", status_code=201,
              summary="Record a contact after the coaching year (the municipality's coach)")
    def follow_up(plan_id: uuid.UUID, body: FollowUpBody, principal: Coach, response: Response,
                  idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        if principal.provider:
            raise Forbidden(detail="Follow-up after the year is the municipality's.")
        return answer(response, app.record_follow_up(
            plan_id, **body.model_dump(),
            keyed=keyed(principal, idempotency_key, f"follow-up-contacts/{plan_id}", body)))

    @api.post("/plans/{plan_id}/employer-confirmations", status_code=201,
              summary="Record an employer's confirmation of the client's employment on a day")
    def employer_confirmation(plan_id: uuid.UUID, body: EmployerConfirmationBody, principal: Coach,
                              response: Response, idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        visible_plan(principal, plan_id)
        return answer(response, app.record_employer_confirmation(
            plan_id, **body.model_dump(), recorded_by=coach_of(principal),
            keyed=keyed(principal, idempotency_key, f"employer-confirmations/{plan_id}", body)))

    @api.get("/coaches/{coach_id}/overdue-check-ins", summary="Overdue check-ins of one coach")
    def overdue_of_coach(coach_id: CoachId, principal: Reader) -> dict[str, Any]:
        if principal.provider and coach_of(principal) != coach_id:
            raise NotFound("Coach")
        visible = sees(principal)
        return {"coach_id": coach_id, "overdue": app.overdue_check_ins(
            lambda s: s.coach_id == coach_id and visible(s))}

    @api.get("/municipalities/{municipality}/overdue-check-ins",
             summary="Overdue check-ins in one municipality")
    def overdue_of_municipality(municipality: Annotated[Municipality, Path()],
                                principal: Reader) -> dict[str, Any]:
        if not principal.sees_municipality(municipality):
            raise NotFound("Municipality")
        visible = sees(principal)
        return {"municipality": municipality, "overdue": app.overdue_check_ins(
            lambda s: s.municipality == municipality and visible(s))}

    @api.get("/followed-trajectories", summary="How many trajectories coaching follows (counts only)")
    def followed(principal: Reader) -> dict[str, Any]:
        per_municipality = {m: n for m, n in app.followed_per_municipality().items()
                            if principal.sees_municipality(m)}
        return {"total": sum(per_municipality.values()), "per_municipality": per_municipality}

    @api.get("/health")
    def health() -> dict[str, str]:
        return ready(api)  # 503 problem+json while a consumer cannot make progress

    add_provider_routes(api, app, credentials)
    return api
