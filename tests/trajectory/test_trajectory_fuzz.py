"""The trajectory API fuzzed from its own OpenAPI document: no 5xx for any input, every
rejection a problem+json that names what was wrong; as a municipality's case system, as
a provider and as a contract manager, so the fuzzing reaches past each door."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from infra.demo import write_credentials
from services.trajectory.tests.conftest import Clock, with_administrator
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication

_path, _tokens = write_credentials(Path(tempfile.mkdtemp(prefix="tweespoor-trajectory-fuzz-")))
CREDENTIALS, TOKENS, _ = with_administrator(_path, _tokens)
APP = TrajectoryApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                            clock=Clock(dt.datetime(2026, 11, 23, tzinfo=dt.UTC)))
trajectory = schemathesis.openapi.from_asgi("/openapi.json", create_api(APP, CREDENTIALS))

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def check(response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text[:200]
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"]
        if response.status_code == 422:
            assert problem.get("errors") or problem.get("detail")


@pytest.mark.parametrize("caller", ["alkmaar-case-system", "agens-provider", "region-contract-manager"])
@trajectory.parametrize()
@FUZZ
def test_trajectory_never_fails_and_explains_every_rejection(case, caller):
    check(case.call(headers={"Authorization": f"Bearer {TOKENS[caller]}"}))
