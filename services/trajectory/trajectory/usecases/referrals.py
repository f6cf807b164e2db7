"""What the service consumes, decided: a referral opens a trajectory, a withdrawal closes
it, coaching's request reopens a placed one. Each returns the trajectory it changed (for
the inbox to record with the record's receipt, in one transaction) or None."""

from __future__ import annotations

import logging
from typing import Any

from contracts.events import ClientReferred, ReferralWithdrawn, TrajectoryReopenRequested
from contracts.problems import NotFound
from trajectory.domain import InvalidFact, Trajectory, TrajectoryConflict
from trajectory.usecases.reading import find_trajectory
from trajectory.usecases.reference import ReferenceData

log = logging.getLogger(__name__)

# Why intake withdrew a referral, as the reason its trajectory closes.
WITHDRAWAL_REASONS = {"client-request": "dropped-out", "moved-away": "moved-away",
                      "back-on-benefit": "back-on-benefit", "error": "other", "other": "other"}


class Referrals:
    def __init__(self, app: Any, reference: ReferenceData) -> None:
        self.app, self.reference = app, reference

    def open(self, event: ClientReferred) -> Trajectory | None:
        if event.trajectory_id in self.app.repository:
            log.warning("trajectory_exists", extra={"trajectory": str(event.trajectory_id)})
            return None
        trajectory = Trajectory(event.trajectory_id, referral_id=event.referral_id,
                                client_id=event.client_id, municipality=event.municipality,
                                programme=event.programme, opened_on=event.referred_on)
        if event.route == "lbu" and event.wnk_contract_starts_on is not None:
            # LBU: the client took a job instead of a benefit, so the work track starts
            # with the trajectory (the provider guiding it is assigned next, by the desk).
            employer = self._employer(event.programme) or "WNK"
            try:
                trajectory.start_contract(employer, event.wnk_contract_starts_on, None, by="intake")
            except (InvalidFact, TrajectoryConflict) as error:  # opening matters more
                log.warning("lbu_contract_not_recorded", extra={"trajectory": str(event.trajectory_id),
                                                                "reason": type(error).__name__})
        return trajectory

    def _employer(self, programme: str) -> str | None:
        try:
            return self.reference.programme(programme).employer
        except NotFound:
            return None

    def close_withdrawn(self, event: ReferralWithdrawn) -> Trajectory | None:
        trajectory = find_trajectory(self.app, event.trajectory_id)
        if trajectory is None or trajectory.is_ended:
            return None
        # A withdrawal dated before the referral (a slip upstream) still closes it: on the
        # day it opened, so that its places free.
        closed_on = max(event.withdrawn_on, trajectory.opened_on)
        trajectory.close(WITHDRAWAL_REASONS[event.reason], closed_on, by="intake")
        return trajectory

    def reopen(self, event: TrajectoryReopenRequested) -> Trajectory | None:
        trajectory = find_trajectory(self.app, event.trajectory_id)
        if trajectory is None or trajectory.state != "placed":
            log.info("reopen_not_possible", extra={"trajectory": str(event.trajectory_id),
                                                   "state": trajectory.state if trajectory else None})
            return None
        trajectory.reopen(max(event.requested_on, trajectory.opened_on), event.reason, by="coaching")
        return trajectory
