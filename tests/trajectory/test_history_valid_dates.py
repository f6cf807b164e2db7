"""A trajectory's history shows each fact's valid date (`on`) apart from its recorded
time (`recorded_at`), ordered by valid date, ties in the order recorded; and "lies in the
future" is judged by the installation's date, not the machine's (issue 15, item 4). On
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from contracts.problems import Problem
from contracts.service import store_env
from services.trajectory.tests.conftest import RECORDED_AT, Clock, refer
from trajectory import provider_reports as reports
from contracts.idempotency import RequestKey
from trajectory.application import TrajectoryApplication, TrajectoryConfig

LEAD = "Voortraject"  # Focus2Move's entry discipline, given to a provider by the desk


@pytest.fixture
def app(database_url):
    app = TrajectoryApplication(store_env(database_url("trajectory")), clock=Clock(RECORDED_AT),
                                config=TrajectoryConfig(), calendar=lambda: dt.date(2008, 3, 1))
    yield app
    app.close()


def report(app: TrajectoryApplication, provider: str, trajectory_id: uuid.UUID,
           payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    return app.report(provider, trajectory_id, reports.parse(payload),
                      RequestKey(f"webhook:{provider}", msg_id, f"fp-{msg_id}"))


def test_a_fact_reported_late_stands_at_its_valid_date(app):
    trajectory_id = refer(app, referred_on=dt.date(2008, 2, 4))
    [assignment] = app.trajectory(trajectory_id)["assignments"]
    provider, discipline = assignment["provider"], assignment["discipline"]
    assert report(app, provider, trajectory_id, {"type": "plan-agreed", "discipline": discipline,
                                                 "agreed_on": "2008-02-20"})[0] == 202
    # Reported afterwards, but it happened before the plan was agreed.
    assert report(app, provider, trajectory_id, {
        "type": "obstacle-identified", "discipline": discipline, "obstacle_id": str(uuid.uuid4()),
        "kind": "debts", "identified_on": "2008-02-12"})[0] == 202

    history = app.history(trajectory_id)
    assert [(f["fact"], f["on"]) for f in history] == [
        ("Opened", "2008-02-04"), ("Assigned", "2008-02-04"), ("ObstacleIdentified", "2008-02-12"),
        ("PlanAgreed", "2008-02-20")]
    assert [f["version"] for f in history] == [1, 2, 4, 3]
    recorded = [dt.datetime.fromisoformat(f["recorded_at"]) for f in history]
    assert recorded[2] > recorded[3]  # recorded after the plan, shown before it
    assert all(r.year >= 2026 for r in recorded)  # recorded time is real time


def test_lies_in_the_future_is_judged_by_the_installation_s_date(app):
    """The installation's date is 1 March 2008 (the machine's is years later): a report
    dated the day after is refused, one dated that day is taken."""
    trajectory_id = refer(app, referred_on=dt.date(2008, 2, 4))
    [assignment] = app.trajectory(trajectory_id)["assignments"]
    provider, discipline = assignment["provider"], assignment["discipline"]
    with pytest.raises(Problem) as refused:
        report(app, provider, trajectory_id, {"type": "plan-agreed", "discipline": discipline,
                                              "agreed_on": "2008-03-02"})
    assert refused.value.status == 422
    assert report(app, provider, trajectory_id, {"type": "plan-agreed", "discipline": discipline,
                                                 "agreed_on": "2008-03-01"})[0] == 202
