"""Commands on one plan: what a coach or a provider records, and what falls due by the
calendar (the scheduler). Each is decided again when another writer changed the plan in
between (the scheduler, the inbox, a second request): optimistic concurrency, by the rule
every service follows (`contracts.commands`)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from contracts.commands import Busy, retry_on_conflict
from contracts.idempotency import Answer, RequestKey, recorded, replay
from contracts.problems import Conflict, Invalid
from coaching.clock import Clock
from coaching.domain import CoachingPlan, InvalidFact, PlanConflict
from coaching.integration import ensure_translatable
from coaching.usecases.stored import answers_about, plan_of

MAX_DAYS_AHEAD = 92  # a new job may be recorded before it starts, but not months ahead

# How a command's first answer is given (and recorded, for a resent request): created by a
# coach's own request, or accepted from a provider's webhook.
AnsweredAs = Callable[[dict[str, Any]], Answer]


class PlanCommands:
    def __init__(self, store: Any, *, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def record_check_in(self, plan_id: uuid.UUID, *, recorded_by: str, keyed: RequestKey | None = None,
                        answered_as: AnsweredAs = Answer.created, **facts: Any) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            number = plan.record_check_in(**facts, recorded_by=recorded_by, today=self.clock())
            return {"plan_id": str(plan.id), "check_in": number}
        return self._change(plan_id, command, keyed, answered_as)

    def record_job_loss(self, plan_id: uuid.UUID, *, lost_on: dt.date, reason: str,
                        keyed: RequestKey | None = None, answered_as: AnsweredAs = Answer.created) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            plan.lose_job(lost_on=lost_on, reason=reason, today=self.clock())
            return {"plan_id": str(plan.id), "lost_on": lost_on.isoformat()}
        return self._change(plan_id, command, keyed, answered_as)

    def record_placement(self, plan_id: uuid.UUID, *, keyed: RequestKey | None = None,
                         answered_as: AnsweredAs = Answer.created, **job: Any) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            if job["starts_on"] > self.clock() + dt.timedelta(days=MAX_DAYS_AHEAD):
                raise InvalidFact("starts_on", f"must be within {MAX_DAYS_AHEAD} days from today")
            placed = plan.place_again(**job)
            return {"plan_id": str(plan.id), "starts_on": job["starts_on"].isoformat(),
                    "recorded": placed, "ends_on": plan.ends_on.isoformat()}
        return self._change(plan_id, command, keyed, answered_as)

    def request_reopen(self, plan_id: uuid.UUID, *, reason: str, requested_on: dt.date,
                       requested_by: str, keyed: RequestKey | None = None,
                       answered_as: AnsweredAs = Answer.created) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            request_id = plan.request_reopen(reason=reason, requested_on=requested_on,
                                             requested_by=requested_by, today=self.clock())
            return {"plan_id": str(plan.id), "request_id": str(request_id)}
        return self._change(plan_id, command, keyed, answered_as)

    def record_follow_up(self, plan_id: uuid.UUID, *, keyed: RequestKey | None = None,
                         answered_as: AnsweredAs = Answer.created, **facts: Any) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            plan.record_follow_up(**facts, today=self.clock())
            return {"plan_id": str(plan.id), "contacted_on": facts["contacted_on"].isoformat()}
        return self._change(plan_id, command, keyed, answered_as)

    def record_employer_confirmation(self, plan_id: uuid.UUID, *, recorded_by: str | None,
                                     keyed: RequestKey | None = None,
                                     answered_as: AnsweredAs = Answer.created, **facts: Any) -> Answer:
        def command(plan: CoachingPlan) -> dict[str, Any]:
            confirmed = plan.confirm_by_employer(**facts, recorded_by=recorded_by, today=self.clock())
            return {"plan_id": str(plan.id), "confirmed_on": facts["confirmed_on"].isoformat(),
                    "recorded": confirmed}
        return self._change(plan_id, command, keyed, answered_as)

    def _change(self, plan_id: uuid.UUID, command: Callable[[CoachingPlan], dict[str, Any]],
                keyed: RequestKey | None, answered_as: AnsweredAs) -> Answer:
        """Loads the plan, decides, saves it with the answer (if keyed) in one transaction;
        the first answer again for a resent request. The domain's refusals become a
        Conflict (the plan's state does not allow it) or Invalid (a fact cannot be right)."""
        def attempt() -> Answer:
            if keyed and (first := replay(self.store, keyed)):
                return first
            plan = plan_of(self.store.repository, plan_id)
            try:
                body = command(plan)
            except PlanConflict as conflict:
                raise Conflict(detail=str(conflict)) from None
            except InvalidFact as invalid:
                raise Invalid.field(invalid.field, invalid.reason) from None
            ensure_translatable(plan.pending_events)
            answer = answered_as(body)
            self.store.save(plan, *recorded(keyed, answer))
            return answer

        return retry_on_conflict(attempt, what="plan")

    def act_until(self, plan_id: uuid.UUID, today: dt.date) -> int:
        """Records what fell due on one plan up to `today`; returns how many events.
        Run twice, or by two processes at once, it records each due event once: both
        read the same version, the store takes the first to write the next one, and the
        other finds, on looking again, that nothing is left to do."""
        def attempt() -> int:
            plan = plan_of(self.store.repository, plan_id)
            emitted = plan.act_until(today, answers_about(self.store.repository, plan))
            if emitted:
                ensure_translatable(plan.pending_events)
                self.store.save(plan)
            return emitted

        try:
            return retry_on_conflict(attempt, what="plan")
        except Busy:
            return 0  # still contended: the next run will see what is left
