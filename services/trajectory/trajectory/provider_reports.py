"""What a provider may report about a trajectory: the bodies of its signed webhooks.

Each report names its `type` and the `discipline` the provider reports in (it must hold
it in that trajectory). Free text is limited to employer and occupation names; the rest
are codes, because a provider's notes about a person are personal data.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from contracts.events import ContractEndReason, Hours, ObstacleKind
from contracts.problems import Invalid


def _plain(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must not contain control characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


Discipline = Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_plain)]
Name = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_plain)]


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    happened: ClassVar[str]  # the field that dates what happened: it may not lie ahead

    discipline: Discipline = Field(description="The discipline you report in; you must hold it.")


class PlanAgreed(_Report):
    happened = "agreed_on"
    type: Literal["plan-agreed"]
    agreed_on: dt.date
    disciplines: tuple[Discipline, ...] = Field((), max_length=12,
                                                description="Further disciplines the plan needs")


class ContractStarted(_Report):
    happened = "starts_on"
    type: Literal["contract-started"]
    starts_on: dt.date
    ends_on: dt.date | None = None
    employer: Name | None = Field(None, description="Defaults to WNK in Focus2Move")


class ContractExtended(_Report):
    happened = "extended_on"
    type: Literal["contract-extended"]
    extended_on: dt.date
    ends_on: dt.date


class ContractEnded(_Report):
    happened = "ended_on"
    type: Literal["contract-ended"]
    ended_on: dt.date
    reason: ContractEndReason


class ObstacleIdentified(_Report):
    happened = "identified_on"
    type: Literal["obstacle-identified"]
    obstacle_id: uuid.UUID = Field(description="Your id for it, to report its resolution")
    kind: ObstacleKind
    identified_on: dt.date


class ObstacleResolved(_Report):
    happened = "resolved_on"
    type: Literal["obstacle-resolved"]
    obstacle_id: uuid.UUID
    outcome: Literal["resolved", "manageable"]
    resolved_on: dt.date


class MediationFailed(_Report):
    happened = "attempted_on"
    type: Literal["mediation-failed"]
    attempted_on: dt.date
    reason: Literal["no-suitable-vacancy", "not-hired", "not-ready", "other"]


class SchoolingStarted(_Report):
    happened = "starts_on"
    type: Literal["schooling-started"]
    starts_on: dt.date
    relevance: Literal["shortage-occupation", "required-qualification", "employer-commitment",
                       "basic-work-skills"] = Field(description="Why it helps on the labour market")
    occupation: Name = Field(description="The occupation it prepares for")


class SchoolingEnded(_Report):
    happened = "ended_on"
    type: Literal["schooling-ended"]
    ended_on: dt.date
    outcome: Literal["completed", "stopped"]


class DisciplineCompleted(_Report):
    happened = "completed_on"
    type: Literal["discipline-completed"]
    completed_on: dt.date


class PlacedInJob(_Report):
    happened = "starts_on"
    type: Literal["placed-in-job"]
    employer: Name
    hours_per_week: Hours
    contract_type: Literal["permanent", "fixed-term", "temporary-agency", "other"]
    starts_on: dt.date


class Closed(_Report):
    happened = "closed_on"
    type: Literal["closed"]
    reason: Literal["dropped-out", "moved-away", "back-on-benefit", "unknown-destination", "other"]
    closed_on: dt.date


Report = Annotated[
    PlanAgreed | ContractStarted | ContractExtended | ContractEnded | ObstacleIdentified
    | ObstacleResolved | MediationFailed | SchoolingStarted | SchoolingEnded | DisciplineCompleted
    | PlacedInJob | Closed,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(Report)
TYPES = tuple(m.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
              for m in _Report.__subclasses__())


def parse(payload: Any) -> Report:
    """A report from a verified body; Invalid naming the fields (never their values)."""
    try:
        return _ADAPTER.validate_python(payload)
    except ValidationError as error:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": _reason(e)}
                  for e in error.errors(include_input=False)]
        raise Invalid(errors, title="Invalid report") from None


def dates(report: Report) -> list[tuple[str, dt.date]]:
    """The date of what happened, with its field name: it may not lie in the future (an
    end date agreed for later may)."""
    return [(report.happened, getattr(report, report.happened))]


def _reason(error: Any) -> str:
    if error["type"] == "union_tag_invalid":  # its message would repeat the tag sent
        return f"type must be one of: {', '.join(TYPES)}"
    return error["msg"]
