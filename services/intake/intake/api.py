"""Intake's HTTP API for the municipal case systems: thin, errors as problem+json.

Every route needs a bearer credential; a municipality's credential sees only its own
referrals and offers (another's answer 404, so existence does not leak).
(No `from __future__ import annotations` here: FastAPI must see the local dependency
aliases as objects, not as strings.)
"""


import datetime as dt
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.access import Credentials, Principal
from contracts.events import BenefitSituation, Programme
from contracts.idempotency import fingerprint
from contracts.idempotency import RequestKey
from contracts.municipalities import Municipality
from contracts.problems import Forbidden
from contracts.web import problems as web_problems
from contracts.web.actors import acting
from contracts.web.auth import require
from contracts.web.health import health as ready
from contracts.web.problems import responses
from intake.application import IntakeApplication, ReferralInput
from intake.domain import is_valid_bsn
from intake.privacy import Person


def _bsn(value: str) -> str:
    if not is_valid_bsn(value):
        raise ValueError("not a valid BSN (9 digits passing the 11-test)")
    return value


# "Today" of the "not in the future" checks: the application's clock (the installation's,
# `contracts.clock`), set for each request by `_Today`, so the checks run in validation and
# answer 422 naming the field like every other invalid field.
_today: ContextVar[Callable[[], dt.date]] = ContextVar("intake_today", default=dt.date.today)


class _Today:
    """ASGI middleware: every request validates its dates against `clock`."""

    def __init__(self, asgi: Any, clock: Callable[[], dt.date]) -> None:
        self.asgi, self.clock = asgi, clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        token = _today.set(self.clock)
        try:
            await self.asgi(scope, receive, send)
        finally:
            _today.reset(token)


def _past(value: dt.date) -> dt.date:
    if value > _today.get()():
        raise ValueError("must not be in the future")
    return value


def _born(value: dt.date) -> dt.date:
    if value < dt.date(1900, 1, 1):
        raise ValueError("must be on or after 1900-01-01")
    return _past(value)


def _name(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must not contain control characters")
    return value.strip()


Bsn = Annotated[str, AfterValidator(_bsn)]
PastDate = Annotated[dt.date, AfterValidator(_past)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_name)]
CaseworkerId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                              description="Send the same key to retry safely.")]


class PersonFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bsn: Bsn = Field(description="Citizen service number; passes the 11-test. Never leaves intake.")
    name: Name
    date_of_birth: Annotated[dt.date, AfterValidator(_born)]


class ReferralRequest(PersonFields):
    """A referral as the municipal case system sends it."""

    municipality: Municipality
    programme: Programme
    benefit: BenefitSituation = Field(description="bijstand (Participatiewet, formerly WWB), wao, "
                                                  "bijstand-wao (both), anw, or none (a Nugger)")
    uwv_registered_on: PastDate | None = Field(None, description="Registration at UWV (formerly CWI)")
    distance_to_labour_market: Literal["small", "large", "very-large", "unknown"]
    referred_on: PastDate
    caseworker_id: CaseworkerId


class WithdrawalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    withdrawn_on: PastDate
    reason: Literal["client-request", "moved-away", "back-on-benefit", "error", "other"]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Literal["request", "retention-ended"] = Field(
        description="A valid request of the person (AVG art. 17), or the end of the retention period")


class JobOfferRequest(PersonFields):
    """LBU: a job offered to a new applicant instead of a benefit."""

    municipality: Municipality
    offered_on: PastDate
    caseworker_id: CaseworkerId


class AcceptanceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepted_on: PastDate
    contract_starts_on: dt.date = Field(description="Start of the temporary contract at WNK")


class RefusalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refused_on: PastDate


class ReturnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    returned_on: PastDate


class RegistryRequestOrder(BaseModel):
    """Which municipality's follow-up points, reached on or before which date."""

    model_config = ConfigDict(extra="forbid")

    municipality: Municipality
    on: PastDate | None = Field(None, description="The date the points are reached by (default: today)")


CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}}
# Intake's own wording where the shared one says less (contracts.web.problems.DESCRIPTIONS).
DESCRIBED = {
    403: "The credential lacks the scope (or acts for another municipality)",
    404: "Unknown, or belongs to another municipality",
    409: "Conflicts with the current state (named, with what is allowed)",
    410: "Erased",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return responses(401, 403, 404, 422, 503, *codes, described=DESCRIBED)


def create_api(app: IntakeApplication, credentials: Credentials) -> FastAPI:
    api = FastAPI(title="Tweespoor intake", version="0.2.0",
                  description="Referrals and LBU job offers from the municipal case systems. "
                              "Personal data is accepted here and nowhere else.")
    web_problems.install(api)
    api.add_middleware(_Today, clock=app.clock)
    writer = Annotated[Principal, Depends(acting(require(credentials, "referrals:write", "municipality")))]
    reader = Annotated[Principal, Depends(require(credentials, "referrals:read"))]
    personal = Annotated[Principal, Depends(require(credentials, "persons:read"))]

    def own(caller: Principal, municipality: str) -> None:
        if not caller.sees_municipality(municipality):
            raise Forbidden(detail="A municipality refers only its own clients.")

    @api.post("/referrals", status_code=201, responses=_errors(409))
    def refer(request: ReferralRequest, caller: writer, response: Response,
              idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        """Refer a client; eligible referrals open a trajectory, ineligible ones are recorded
        as rejected with the reasons. The same Idempotency-Key returns the first answer."""
        own(caller, request.municipality)
        fields = request.model_dump()
        person = Person(fields.pop("bsn"), fields.pop("name"), fields.pop("date_of_birth"))
        keyed = RequestKey(caller.id, idempotency_key, fingerprint(request.model_dump(mode="json"))) \
            if idempotency_key else None
        answer = app.refer(ReferralInput(person=person, **fields), keyed)
        response.status_code = answer.status  # created, or the first answer again
        return answer.body

    @api.get("/referrals/{referral_id}", responses=_errors())
    def referral(referral_id: uuid.UUID, caller: reader) -> dict[str, Any]:
        """A referral's status and history."""
        return app.referral(referral_id, caller)

    @api.post("/referrals/{referral_id}/withdrawal", responses=_errors(409))
    def withdraw(referral_id: uuid.UUID, request: WithdrawalRequest, caller: writer) -> dict[str, Any]:
        """Withdraw an open referral; its trajectory is closed by the trajectory service."""
        return app.withdraw(referral_id, caller, **request.model_dump())

    @api.get("/referrals/{referral_id}/person", responses=_errors(410))
    def person(referral_id: uuid.UUID, caller: personal) -> dict[str, Any]:
        """Whom the referral is about: only for credentials with the persons:read scope."""
        return app.person(referral_id, caller)

    eraser = Annotated[Principal, Depends(acting(require(credentials, "persons:erase", "municipality")))]

    @api.post("/referrals/{referral_id}/person/erasure", responses=_errors())
    def erase(referral_id: uuid.UUID, request: ErasureRequest, caller: eraser) -> dict[str, Any]:
        """Erase the person this referral is about, in all their referrals and offers: their
        key is deleted, so their data is unreadable everywhere; the erasure is on record."""
        return app.erase_person_of(referral_id, caller, reason=request.reason)

    @api.post("/job-offers", status_code=201, responses=_errors())
    def offer(request: JobOfferRequest, caller: writer, response: Response,
              idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        """LBU: record a job offered instead of a benefit."""
        own(caller, request.municipality)
        fields = request.model_dump()
        person = Person(fields.pop("bsn"), fields.pop("name"), fields.pop("date_of_birth"))
        keyed = RequestKey(caller.id, idempotency_key, fingerprint(request.model_dump(mode="json"))) \
            if idempotency_key else None
        answer = app.offer_job(person, keyed=keyed, **fields)
        response.status_code = answer.status  # created, or the first answer again
        return answer.body

    @api.get("/job-offers/{offer_id}", responses=_errors())
    def job_offer(offer_id: uuid.UUID, caller: reader) -> dict[str, Any]:
        return app.job_offer(offer_id, caller)

    @api.post("/job-offers/{offer_id}/acceptance", responses=_errors(409))
    def accept(offer_id: uuid.UUID, request: AcceptanceRequest, caller: writer) -> dict[str, Any]:
        """The applicant takes the job: a temporary WNK contract and a Focus2Move trajectory."""
        return app.accept_offer(offer_id, caller, **request.model_dump())

    @api.post("/job-offers/{offer_id}/refusal", responses=_errors(409))
    def refuse(offer_id: uuid.UUID, request: RefusalRequest, caller: writer) -> dict[str, Any]:
        """The applicant refuses; the response period starts."""
        return app.refuse_offer(offer_id, caller, **request.model_dump())

    @api.post("/job-offers/{offer_id}/return", responses=_errors(409))
    def returned(offer_id: uuid.UUID, request: ReturnRequest, caller: writer) -> dict[str, Any]:
        """The applicant came back for a benefit (also after joining the unknown cohort)."""
        return app.record_return(offer_id, caller, **request.model_dump())

    # --- the employment registry (formats in the README, "Employment registry") -------

    registrar = Annotated[Principal, Depends(acting(require(credentials, "persons:read", "municipality")))]

    @api.post("/registry/requests", status_code=201, response_class=Response,
              responses={201: {"description": "The request file (CSV, with BSNs)", **CSV},
                         204: {"description": "No follow-up point is due"}, **_errors()})
    def registry_request_file(request: RegistryRequestOrder, caller: registrar) -> Response:
        """Build the employment-registry request file for the municipality's cohorts: the
        LBU unknown-destination cohort 3, 6 and 12 months after the refusal, placed clients
        6, 12 and 24 months after the placement; each point once. The file holds BSNs and
        is not kept: carry it to the registry. `Location` names the request."""
        built = app.build_registry_request(caller, municipality=request.municipality,
                                           on=request.on or app.clock())
        if built is None:
            return Response(status_code=204)
        summary, file = built
        return Response(file, status_code=201, media_type="text/csv; charset=utf-8", headers={
            "Location": f"/registry/requests/{summary['request_id']}",
            "Content-Disposition": f'attachment; filename="registry-request-{summary["request_id"]}.csv"'})

    @api.get("/registry/requests/{request_id}", responses=_errors())
    def registry_request(request_id: uuid.UUID, caller: reader) -> dict[str, Any]:
        """A request: its lines by pseudonym and point, and the answers imported (no BSN)."""
        return app.registry_request(request_id, caller)

    @api.get("/registry/requests/{request_id}/request.csv", response_class=Response,
             responses={200: {"description": "The request file, rendered again", **CSV}, **_errors()})
    def registry_request_kept(request_id: uuid.UUID, caller: personal) -> Response:
        """The request file again; an erased person's BSN is empty."""
        return Response(app.registry_file(request_id, caller, "request"), media_type="text/csv; charset=utf-8")

    @api.get("/registry/requests/{request_id}/answers.csv", response_class=Response,
             responses={200: {"description": "The answers imported, as an answer file", **CSV}, **_errors()})
    def registry_answers_kept(request_id: uuid.UUID, caller: personal) -> Response:
        """The answers imported so far, as an answer file; an erased person's BSN is empty."""
        return Response(app.registry_file(request_id, caller, "answer"), media_type="text/csv; charset=utf-8")

    @api.post("/registry/answers", responses=_errors())
    def registry_answers(file: Annotated[bytes, Body(media_type="text/csv", max_length=8 * 1024 * 1024)],
                         caller: writer) -> dict[str, Any]:
        """Import an answer file all or nothing: every row is checked first, and one wrong
        row (named with its field, never its value) rejects the file with 422. Rows already
        imported with the same values are skipped: importing a file twice changes nothing."""
        return app.import_registry_answers(caller, file)

    @api.get("/health")
    def health() -> dict[str, str]:
        return ready(api)  # 503 problem+json while a consumer cannot make progress

    return api
