"""What a coach or a provider sends: the same bodies over bearer HTTP and signed webhooks.

Enumerations, not free text, for what was discussed: notes about a person are personal
data and would end up in every consumer's store.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts.events import CheckInIssue, ContractType, Hours, NextStep, ReopenReason
from contracts.problems import Invalid

Support = Literal["debts", "childcare", "travel", "conflict-at-work", "other"]
JobLossReason = Literal["dismissed", "resigned", "contract-ended", "illness", "other"]
Employer = Annotated[str, Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckInBody(Body):
    """A check-in. Leave `check_in` out to record the first one not yet recorded."""

    check_in: int | None = Field(None, ge=1, le=52, description="The scheduled check-in's number")
    held_on: dt.date
    contact_made: bool
    still_employed: bool | None = Field(None, description="Required when contact was made")
    hours_per_week: Hours | None = None
    issues_raised: list[CheckInIssue] = Field(default_factory=list, max_length=10)
    support: list[Support] = Field(default_factory=list, max_length=10)
    next_step: NextStep | None = None

    def facts(self) -> dict[str, Any]:
        return {"number": self.check_in, "held_on": self.held_on, "contact_made": self.contact_made,
                "still_employed": self.still_employed, "hours_per_week": self.hours_per_week,
                "issues_raised": tuple(self.issues_raised), "support": tuple(self.support),
                "next_step": self.next_step}


class JobLossBody(Body):
    lost_on: dt.date = Field(description="The first day without the job")
    reason: JobLossReason


class PlacementBody(Body):
    """A new job within the coaching year; coaching goes on to the original end date."""

    employer: Employer
    hours_per_week: Hours
    contract_type: ContractType
    starts_on: dt.date


class ReopenBody(Body):
    reason: ReopenReason
    requested_on: dt.date


class FollowUpBody(Body):
    """A contact after the coaching year, by the municipality."""

    contacted_on: dt.date
    contact_made: bool
    employed: bool | None = None
    same_employer: bool | None = None


class EmployerConfirmationBody(Body):
    """An employer's confirmation of whether the client worked for it on a day; who at the
    employer said so is not recorded."""

    confirmed_on: dt.date = Field(description="The day the employer speaks for")
    employed: bool = Field(description="The client worked for the confirming employer that day")
    same_employer: bool = Field(description="The confirming employer is the placement's")
    hours_per_week: Hours | None = Field(None, description="When employed")


def parse(model: type[Body], payload: Any) -> Any:
    """A webhook's verified JSON as a body; Invalid naming the fields, never the values."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
                  for e in error.errors()]
        raise Invalid(errors) from None
