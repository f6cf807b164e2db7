"""Coaching's HTTP API fuzzed from its own OpenAPI document: no 5xx for any input, and
every rejection a problem+json that names what was wrong. Authorised as Alkmaar's coach,
with plans in the store, so the fuzzing reaches past the door."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from contracts.access import Credentials
from coaching.api import create_api
from coaching.application import CoachingApplication
from coaching.domain import plan_id
from infra.demo import write_credentials
from services.coaching.tests.support import Clock, Feed, Trajectory

_dir = Path(tempfile.mkdtemp(prefix="tweespoor-coaching-fuzz-"))
_path, TOKENS = write_credentials(_dir)
APP = CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=Clock(dt.date(2027, 3, 1)))
_feed, PLANS = Feed(APP), []
for _municipality in ("alkmaar", "bergen"):
    _trajectory = Trajectory(_municipality)
    _feed(_trajectory.opened(), _trajectory.placed(dt.date(2027, 1, 4)))
    PLANS.append(str(plan_id(_trajectory.id, 1)))

coaching = schemathesis.openapi.from_asgi("/openapi.json", create_api(APP, Credentials.from_file(_path)))

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def check(response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text[:200]
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"]
        if response.status_code == 422:
            assert problem.get("errors") or problem.get("detail")


@coaching.parametrize()
@FUZZ
def test_coaching_never_fails_and_explains_every_rejection(case):
    check(case.call(headers={"Authorization": f"Bearer {TOKENS['alkmaar-coach']}"}))


@coaching.parametrize()
@FUZZ
def test_coaching_never_fails_on_real_plans_of_its_own_and_of_another_municipality(case):
    """The same, with the plan in the path one that exists (Alkmaar's, or Bergen's, which
    Alkmaar's coach may not see), so the bodies reach the plan's rules."""
    if "plan_id" in (case.path_parameters or {}):
        case.path_parameters["plan_id"] = PLANS[len(str(case.body)) % 2]
    check(case.call(headers={"Authorization": f"Bearer {TOKENS['alkmaar-coach']}"}))
