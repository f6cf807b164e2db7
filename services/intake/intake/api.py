"""Intake's HTTP API for the municipal case systems: thin, errors as problem+json."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts import problems
from contracts.events import BenefitSituation, Programme
from contracts.municipalities import Municipality
from intake.application import IntakeApplication
from intake.domain import is_valid_bsn


def _bsn(value: str) -> str:
    if not is_valid_bsn(value):
        raise ValueError("not a valid BSN (9 digits passing the 11-test)")
    return value


def _not_in_future(value: dt.date) -> dt.date:
    if value > dt.date.today():
        raise ValueError("must not be in the future")
    return value


class ReferralRequest(BaseModel):
    """A referral as the municipal case system sends it."""

    model_config = ConfigDict(extra="forbid")

    bsn: Annotated[str, AfterValidator(_bsn)]
    municipality: Municipality
    programme: Programme
    benefit: BenefitSituation
    referred_on: Annotated[dt.date, AfterValidator(_not_in_future)]
    caseworker_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


def create_api(app: IntakeApplication) -> FastAPI:
    api = FastAPI(title="Tweespoor intake", version="0.1.0",
                  description="Referrals from the municipal case systems.")
    problems.install(api)

    @api.post("/referrals", status_code=201)
    def refer(request: ReferralRequest) -> dict[str, Any]:
        return app.refer(**request.model_dump())

    @api.get("/referrals/{referral_id}")
    def referral(referral_id: Annotated[uuid.UUID, Path()]) -> dict[str, Any]:
        return app.referral(referral_id)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
