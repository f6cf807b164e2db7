"""Every HTTP endpoint, fuzzed from its own OpenAPI document: no 5xx for any input, and
every rejection a problem+json that names what was wrong. Authorised as a caller that
may use the endpoint, so the fuzzing reaches past the door."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from contracts.access import Credentials
from infra.demo import write_credentials
from intake.api import create_api as intake_api
from intake.application import IntakeApplication, IntakeConfig
from reporting.api import create_api as reporting_api
from reporting.store import ReportingStore

_dir = Path(tempfile.mkdtemp(prefix="tweespoor-fuzz-"))
_path, TOKENS = write_credentials(_dir)
CREDENTIALS = Credentials.from_file(_path)
MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}

intake = schemathesis.openapi.from_asgi("/openapi.json", intake_api(
    IntakeApplication(MEMORY, config=IntakeConfig(pseudonym_key=b"fuzz")), CREDENTIALS))
reporting = schemathesis.openapi.from_asgi("/openapi.json", reporting_api(
    ReportingStore(f"sqlite:///{_dir}/reporting.db"), CREDENTIALS, today=lambda: dt.date(2026, 11, 23)))

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def check(response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text[:200]
        problem = response.json()
        assert problem["status"] == response.status_code and problem["title"]
        if response.status_code == 422:
            assert problem.get("errors") or problem.get("detail")


@intake.parametrize()
@FUZZ
def test_intake_never_fails_and_explains_every_rejection(case):
    check(case.call(headers={"Authorization": f"Bearer {TOKENS['alkmaar-case-system']}"}))


@reporting.parametrize()
@FUZZ
def test_reporting_never_fails_and_explains_every_rejection(case):
    check(case.call(headers={"Authorization": f"Bearer {TOKENS['region-staff']}"}))
