"""Trajectory's commands against concurrent writers (issue 14, item 5), on SQLite and
PostgreSQL: two service processes (two applications on one store, each with its own
write lock) writing the same aggregates at once through the command paths — provider
reports, contract commands, subscriptions. No 500, no lost write, no double effect; a
command that keeps losing is a 503 problem with Retry-After (`contracts.commands`)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.commands import Busy
from contracts.problems import MEDIA_TYPE
from contracts.service import store_env
from services.trajectory.tests.conftest import (
    RECORDED_AT, Clock, post_report, refer, with_administrator,
)
from infra.demo import write_credentials
from tests.support.racing import at_once, always_conflicting, race
from trajectory import provider_reports as reports
from trajectory.api import create_api
from contracts.idempotency import RequestKey
from trajectory.application import TrajectoryApplication, TrajectoryConfig

LEAD = "Directe bemiddeling en Nazorg"



@pytest.fixture
def processes(database_url):
    """Two trajectory applications on one store, as two service processes."""
    url = database_url("trajectory")
    apps = [TrajectoryApplication(store_env(url), clock=Clock(RECORDED_AT), config=TrajectoryConfig())
            for _ in range(2)]
    yield apps
    for app in apps:
        app.close()


def report(app: TrajectoryApplication, trajectory_id: uuid.UUID, payload: dict[str, Any],
           msg_id: str | None = None) -> tuple[int, dict[str, Any]]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    return app.report("agens", trajectory_id, reports.parse(payload),
                      RequestKey("webhook:agens", msg_id, f"fp-{msg_id}-{sorted(payload.items())}"))


def obstacle(**overrides: Any) -> dict[str, Any]:
    return {"type": "obstacle-identified", "discipline": LEAD, "obstacle_id": str(uuid.uuid4()),
            "kind": "debts", "identified_on": "2008-02-12"} | overrides


def facts(app: TrajectoryApplication, trajectory_id: uuid.UUID) -> list[str]:
    return [f["fact"] for f in app.history(trajectory_id)]


@pytest.fixture
def trajectory(processes):
    trajectory_id = refer(processes[0])
    assert report(processes[0], trajectory_id, {"type": "plan-agreed", "discipline": LEAD,
                                                "agreed_on": "2008-02-10"})[0] == 202
    return trajectory_id


def test_two_reports_on_one_trajectory_from_two_processes_at_once_both_stay(processes, trajectory):
    first, second = obstacle(), obstacle(kind="housing")
    race(processes, 2)
    results = at_once(lambda: report(processes[0], trajectory, first),
                      lambda: report(processes[1], trajectory, second))
    assert [r[0] for r in results] == [202, 202], results
    seen = {o["obstacle_id"] for o in processes[1].trajectory(trajectory)["obstacles"]}
    assert seen == {first["obstacle_id"], second["obstacle_id"]}
    assert facts(processes[0], trajectory).count("ObstacleIdentified") == 2


def test_the_same_report_delivered_to_two_processes_at_once_takes_effect_once(processes, trajectory):
    payload = obstacle()
    race(processes, 2)
    results = at_once(lambda: report(processes[0], trajectory, payload, "msg_twice"),
                      lambda: report(processes[1], trajectory, payload, "msg_twice"))
    assert results[0] == results[1] and results[0][0] == 202, results  # the first answer, twice
    assert facts(processes[0], trajectory).count("ObstacleIdentified") == 1


def test_two_contract_changes_at_once_both_stay(processes):
    contract_id = uuid.UUID(_a_contract(processes[0]))  # one of the seeded tender's
    race(processes, 2)
    results = at_once(
        lambda: processes[0].change_places(contract_id, places=40, on=dt.date(2007, 1, 1), reason="more", by="a"),
        lambda: processes[1].change_places(contract_id, places=41, on=dt.date(2007, 1, 2), reason="more", by="b"))
    assert all(isinstance(r, dict) for r in results), results
    changes = [c for c in processes[1]._contract(contract_id).changes if c["change"] == "places"]
    assert sorted(c["to"] for c in changes[-2:]) == [40, 41]  # both recorded, one after the other
    assert changes[-1]["from"] == changes[-2]["to"]


def _a_contract(app: TrajectoryApplication) -> str:
    register = app.register()
    return str(next(iter(register.contracts_for("focus2move", LEAD))))


def test_two_subscriptions_of_one_provider_at_once_are_both_kept(processes):
    secret = "whsec_" + base64.b64encode(b"s" * 32).decode()
    race(processes, 2)
    results = at_once(*[lambda p=p, n=n: p.subscribe("agens", callback_url=f"https://agens.example/hook/{n}",
                                                      event_types=["nl.reintegratie.trajectory.opened.v1"], secret=secret)
                        for n, p in enumerate(processes)])
    assert all(isinstance(r, dict) for r in results), results
    kept = {s["callback_url"] for s in processes[0].subscriptions("agens")}
    assert kept == {"https://agens.example/hook/0", "https://agens.example/hook/1"}


def test_a_report_that_keeps_losing_is_a_503_with_retry_after_never_a_500(processes, trajectory, tmp_path):
    credentials, _, secrets = with_administrator(*write_credentials(tmp_path / "config"))
    client = TestClient(create_api(processes[0], credentials), raise_server_exceptions=False)
    calls = always_conflicting(processes[0])
    response = post_report(client, secrets, "agens", trajectory, obstacle())
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    assert response.headers["retry-after"] == "1"
    assert calls["recorded"] > 1
    with pytest.raises(Busy):
        processes[0].change_places(uuid.UUID(_a_contract(processes[0])), places=3,
                                   on=dt.date(2007, 1, 1), reason="x", by="a")
