"""The trajectory service's HTTP API: thin, every error as problem+json.

Municipalities read their own trajectories, providers those assigned to them, auditors
all (anything else is a 404, so that existence does not leak); reference data is read by
any authenticated caller and changed only with the `contracts:write` scope. Provider
webhooks and subscriptions are in `provider_api`.
(No `from __future__ import annotations`: FastAPI must see the dependency aliases as objects.)
"""

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from contracts.access import Credentials, Principal
from contracts.municipalities import Municipality
from contracts.problems import Forbidden, Invalid
from contracts.providers import PROVIDERS
from contracts.web import problems as web_problems
from contracts.web.actors import acting
from contracts.web.auth import authenticated
from contracts.web.health import health as ready
from trajectory.application import TrajectoryApplication
from trajectory.provider_api import errors, provider_routes

READ_SCOPES = ("trajectories:read", "audit:read", "reports:read", "contracts:write")
Reason = Annotated[str, Field(min_length=3, max_length=500, description="Why: kept in the audit trail")]


def scoped(credentials: Credentials, *scopes: str, kinds: tuple[str, ...] = ()):
    """A dependency: the caller, if it holds one of `scopes` (and is of one of `kinds`)."""
    caller = authenticated(credentials)

    def dependency(principal: Annotated[Principal, Depends(caller)]) -> Principal:
        if not any(principal.may(s) for s in scopes) or (kinds and principal.kind not in kinds):
            raise Forbidden(detail=f"This needs one of the scopes {', '.join(scopes)}.")
        return principal

    return dependency


class Award(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="The provider's slug", json_schema_extra={"enum": sorted(PROVIDERS)})
    programme: str = Field(min_length=1, max_length=40)
    discipline: str = Field(min_length=1, max_length=80)
    municipalities: list[Municipality] = Field(min_length=1, max_length=5)
    starts_on: dt.date
    ends_on: dt.date
    places: int = Field(ge=0, le=10_000)
    tariff_eur: int = Field(ge=0, le=1_000_000)
    reason: Reason


class PlacesChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    places: int = Field(ge=0, le=10_000)
    on: dt.date = Field(description="From when; trajectories waiting then get the free places")
    reason: Reason


class Extension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ends_on: dt.date
    reason: Reason


class VolumeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    yearly_volume: int = Field(ge=0, le=100_000)
    on: dt.date
    reason: Reason


def create_api(app: TrajectoryApplication, credentials: Credentials) -> FastAPI:
    api = FastAPI(title="Tweespoor trajectory", version="0.2.0",
                  description="Trajectories from referral to placement: providers assigned under "
                              "their contracts and within capacity, the lifecycle with Focus2Move's "
                              "two tracks, signed provider webhooks in and out.")
    web_problems.install(api)
    caller = Annotated[Principal, Depends(scoped(credentials, *READ_SCOPES))]
    admin = Annotated[Principal, Depends(acting(scoped(credentials, "contracts:write", kinds=("staff",))))]

    @api.get("/trajectories/{trajectory_id}", responses=errors())
    def trajectory(trajectory_id: uuid.UUID, reader: caller,
                   as_of: Annotated[dt.datetime | None, Query(
                       description="Replay it as it was recorded at this moment")] = None) -> dict[str, Any]:
        """A trajectory: state, allowed next steps, assignments, both tracks. Providers see
        their own assignments only."""
        return app.trajectory(trajectory_id, reader, as_of)

    @api.get("/trajectories/{trajectory_id}/history", responses=errors())
    def history(trajectory_id: uuid.UUID, reader: caller) -> list[dict[str, Any]]:
        """Every recorded fact of the trajectory, with who recorded it and when."""
        return app.history(trajectory_id, reader)

    @api.get("/programmes", responses=errors())
    def programmes(reader: caller) -> dict[str, Any]:
        """The tender: programmes, yearly volumes, budgets and what is committed of them."""
        return app.programmes_view()

    @api.get("/contracts", responses=errors())
    def contracts(reader: caller) -> list[dict[str, Any]]:
        """Who holds which discipline where, with places and tariff (providers: their own)."""
        return app.contracts_view(reader)

    @api.get("/contracts/{contract_id}", responses=errors())
    def contract(contract_id: uuid.UUID, reader: caller) -> dict[str, Any]:
        """One contract with every change made to it, by whom and why."""
        return app.contract_view(contract_id, reader)

    @api.get("/capacity", responses=errors())
    def capacity(reader: caller) -> list[dict[str, Any]]:
        """Places, places in use and waiting trajectories per discipline."""
        return app.capacity_view(reader)

    @api.post("/contracts", status_code=201, responses=errors(409))
    def award(request: Award, changer: admin) -> dict[str, Any]:
        """Record a new contract (an audited event)."""
        if request.provider not in PROVIDERS:
            raise Invalid.field("provider", "not a contracted provider")
        return app.award_contract(**request.model_dump(), by=changer.id)

    @api.post("/contracts/{contract_id}/places", responses=errors())
    def places(contract_id: uuid.UUID, request: PlacesChange, changer: admin) -> dict[str, Any]:
        """Change a contract's places; waiting trajectories get any that free."""
        return app.change_places(contract_id, **request.model_dump(), by=changer.id)

    @api.post("/contracts/{contract_id}/extension", responses=errors())
    def extend(contract_id: uuid.UUID, request: Extension, changer: admin) -> dict[str, Any]:
        """Extend a contract's period."""
        return app.extend_contract(contract_id, **request.model_dump(), by=changer.id)

    @api.post("/programmes/{slug}/volume", responses=errors())
    def volume(slug: Annotated[str, Path(max_length=40)], request: VolumeChange,
               changer: admin) -> dict[str, Any]:
        """Change a programme's yearly volume."""
        return app.change_volume(slug, **request.model_dump(), by=changer.id)

    api.include_router(provider_routes(app, credentials))

    @api.get("/health")
    def health() -> dict[str, str]:
        return ready(api)  # 503 problem+json while a consumer cannot make progress

    return api

