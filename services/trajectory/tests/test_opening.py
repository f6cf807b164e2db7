"""What trajectory consumes, on the in-memory store: referrals open trajectories (once),
withdrawals close them, coaching's requests reopen placed ones."""

import datetime as dt
import uuid

from contracts.envelope import envelope, source_urn
from contracts.events import (
    ContractStarted, TrajectoryClosed, TrajectoryOpened, TrajectoryReopenRequested,
)
from contracts.service import Outcome
from services.trajectory.tests.conftest import INTAKE_TOPIC, RECORDED_AT, referred, refer, withdrawn
from trajectory.application import integration_events
from trajectory.domain import Trajectory

TOPIC = INTAKE_TOPIC


def published(app, since=0):
    return [e for n in app.recorder.select_notifications(since, 1000, inclusive_of_start=False)
            for _, e in integration_events(app.mapper.to_domain_event(n))]


def test_a_referral_opens_a_trajectory_with_the_same_id(app):
    event = referred(municipality="heiloo", programme="reintegration", referred_on=dt.date(2007, 3, 1))
    assert app.apply(event, TOPIC, 0, 0) is Outcome.APPLIED
    trajectory = app.trajectory(event.data.trajectory_id)
    assert trajectory["state"] == "opened"
    assert trajectory["municipality"] == "heiloo"


def test_the_same_record_delivered_again_is_recognised_by_its_offset(app):
    event = referred()
    app.apply(event, TOPIC, 0, 5)
    assert app.apply(event, TOPIC, 0, 5) is Outcome.SEEN_OFFSET
    assert app.trajectory(event.data.trajectory_id)["version"] == 1


def test_the_same_event_published_again_is_recognised_by_its_id(app):
    event = referred()
    app.apply(event, TOPIC, 0, 5)
    assert app.apply(event, TOPIC, 0, 6) is Outcome.SEEN_EVENT
    assert app.trajectory(event.data.trajectory_id)["version"] == 1


def test_offsets_are_tracked_per_partition(app):
    first, second = referred(), referred()
    assert app.apply(first, TOPIC, 0, 7) is Outcome.APPLIED
    assert app.apply(second, TOPIC, 1, 3) is Outcome.APPLIED
    assert app.position(TOPIC, 0) == 7 and app.position(TOPIC, 1) == 3


def test_events_it_does_not_consume_are_ignored_without_effect(app):
    event = referred()
    opened = envelope(
        TrajectoryOpened(**event.data.model_dump(include={"trajectory_id", "referral_id", "client_id",
                                                          "municipality", "programme"}),
                         opened_on=dt.date(2008, 2, 4)),
        source=source_urn("alkmaar", "tweespoor-trajectory"), origin="t/1/0", sequence=1, time=RECORDED_AT)
    before = app.recorder.max_notification_id()
    assert app.apply(opened, TOPIC, 0, 0) is Outcome.IGNORED
    assert app.recorder.max_notification_id() == before


def test_opening_translates_to_trajectory_opened_and_nothing_else_until_the_desk_decides(app):
    start = app.recorder.max_notification_id()
    event = referred()
    app.apply(event, TOPIC, 0, 0)
    assert [type(e) for e in published(app, start)] == [TrajectoryOpened]
    assert published(app, start)[0].trajectory_id == event.data.trajectory_id


def test_a_referral_that_exists_already_opens_nothing_twice(app):
    trajectory_id = uuid.uuid4()
    app.apply(referred(trajectory_id=trajectory_id), TOPIC, 0, 0)
    assert app.apply(referred(trajectory_id=trajectory_id), TOPIC, 0, 1) is Outcome.APPLIED
    assert app.trajectory(trajectory_id)["version"] == 1


def test_an_lbu_client_starts_at_wnk_with_the_trajectory(app):
    start = app.recorder.max_notification_id()
    event = referred(route="lbu", wnk_contract_starts_on=dt.date(2008, 2, 11))
    app.apply(event, TOPIC, 0, 0)
    events = published(app, start)
    assert [type(e) for e in events] == [TrajectoryOpened, ContractStarted]
    assert events[1].employer.startswith("WNK") and events[1].starts_on == dt.date(2008, 2, 11)
    assert app.trajectory(event.data.trajectory_id)["work_track"]["state"] == "working"


def test_an_lbu_contract_dated_before_the_referral_does_not_keep_the_trajectory_from_opening(app):
    event = referred(route="lbu", wnk_contract_starts_on=dt.date(2008, 1, 2))
    assert app.apply(event, TOPIC, 0, 0) is Outcome.APPLIED
    assert app.trajectory(event.data.trajectory_id)["work_track"] == {"state": "none"}


def test_a_withdrawn_referral_closes_its_trajectory_with_the_reason(app):
    trajectory_id = refer(app)
    start = app.recorder.max_notification_id()
    assert app.apply(withdrawn(trajectory_id, reason="back-on-benefit"), TOPIC, 0, 900) is Outcome.APPLIED
    view = app.trajectory(trajectory_id)
    assert view["state"] == "closed" and view["closing"]["reason"] == "back-on-benefit"
    closed = [e for e in published(app, start) if isinstance(e, TrajectoryClosed)]
    assert [c.reason for c in closed] == ["back-on-benefit"]
    # Withdrawn again (a second withdrawal event): nothing more happens.
    app.apply(withdrawn(trajectory_id), TOPIC, 0, 901)
    assert app.trajectory(trajectory_id)["version"] == view["version"]


def _reopen_requested(trajectory_id, on=dt.date(2008, 9, 1)):
    data = TrajectoryReopenRequested(
        trajectory_id=trajectory_id, request_id=uuid.uuid4(), plan_id=uuid.uuid4(),
        municipality="alkmaar", requested_on=on, reason="job-lost",
        requested_by="provider:agens", employed=False)
    return envelope(data, source=source_urn("alkmaar", "tweespoor-coaching"),
                    origin=f"{data.request_id}/1/0", sequence=1, time=RECORDED_AT)


def test_coaching_reopens_a_placed_trajectory_and_the_desk_assigns_aftercare_again(app):
    trajectory_id = refer(app)
    trajectory: Trajectory = app.repository.get(trajectory_id)
    trajectory.agree_plan(dt.date(2008, 2, 10), [], "agens")
    trajectory.place("Bakkerij", 32, "permanent", dt.date(2008, 5, 1), "agens")
    app.save(trajectory)
    app.run_desk()
    app.apply(_reopen_requested(trajectory_id), "tweespoor.coaching.events.v1", 0, 0)
    app.run_desk()
    view = app.trajectory(trajectory_id)
    assert view["state"] == "active"
    assert [a["discipline"] for a in view["assignments"]] == ["Directe bemiddeling en Nazorg"]


def test_a_reopen_request_for_a_trajectory_that_is_not_placed_changes_nothing(app):
    trajectory_id = refer(app)
    version = app.trajectory(trajectory_id)["version"]
    assert app.apply(_reopen_requested(trajectory_id), "tweespoor.coaching.events.v1", 0, 1) is Outcome.APPLIED
    assert app.trajectory(trajectory_id)["version"] == version
