"""Tampered state is never served: every aggregate loaded for a request or a command is
checked against its hash chain on the way in, in the real stores (SQLite and
PostgreSQL). A row edited behind the application's back, a row deleted, a forged
snapshot: the request answers problem+json `integrity-violation` (503), the log names
the service, the stream and the version, and nothing is served or built on it."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import uuid

import psycopg
import pytest
from fastapi.testclient import TestClient

from contracts.chain import unwrap
from contracts.problems import MEDIA_TYPE
from contracts.service import store_env
from services.trajectory.tests.conftest import (
    RECORDED_AT, Clock, auth, post_report, refer, with_administrator,
)
from infra.demo import write_credentials
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication
from trajectory.contracting import ProviderContract

LEAD = "Directe bemiddeling en Nazorg"


def stored_id(url: str, originator_id: uuid.UUID):
    return originator_id.hex if url.startswith("sqlite") else originator_id


def execute(url: str, statement: str, params: tuple) -> int:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(statement.replace("%s", "?"), params).rowcount
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).rowcount


def table(url: str, kind: str = "events") -> str:
    if url.startswith("sqlite"):
        return f"stored_{kind}"
    return f"trajectory_{kind}"


def edit(app: TrajectoryApplication, url: str, originator_id: uuid.UUID, old: bytes, new: bytes) -> int:
    """Edits the first stored event of the stream that says `old`, as someone with write
    access to the database would (the chain's hashes left as they were)."""
    for stored in app.recorder.select_events(originator_id):
        if old in unwrap(stored)[2]:
            forged = bytes(stored.state).replace(old, new)
            assert execute(url, f"UPDATE {table(url)} SET state = %s WHERE originator_id = %s "
                                "AND originator_version = %s",
                           (forged, stored_id(url, originator_id), stored.originator_version)) == 1
            return stored.originator_version
    raise AssertionError(f"no event of the stream says {old!r}")


@pytest.fixture
def world(database_url, tmp_path):
    url = database_url("tampered")
    path, tokens = write_credentials(tmp_path / "config")
    credentials, tokens, secrets = with_administrator(path, tokens)
    app = TrajectoryApplication(store_env(url), clock=Clock(RECORDED_AT))
    client = TestClient(create_api(app, credentials))
    yield app, url, client, tokens, secrets
    app.close()


def is_integrity_problem(response) -> dict:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    body = response.json()
    assert body["type"].endswith("integrity-violation") and body["status"] == 503
    return body


def violations(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "integrity_violation"]


def test_an_edited_date_in_a_trajectory_is_a_503_with_a_log_line_not_the_edited_date(world, caplog):
    app, url, client, tokens, _ = world
    trajectory_id = refer(app, referred_on=dt.date(2008, 2, 4))
    history = client.get(f"/trajectories/{trajectory_id}/history", headers=auth(tokens))
    assert history.status_code == 200 and "2008-02-04" in history.text

    version = edit(app, url, trajectory_id, b"2008-02-04", b"2008-01-04")
    caplog.set_level(logging.INFO)
    for path in (f"/trajectories/{trajectory_id}/history", f"/trajectories/{trajectory_id}"):
        response = client.get(path, headers=auth(tokens))
        body = is_integrity_problem(response)
        assert "2008-01-04" not in response.text and "2008-02-04" not in response.text
        assert body["stream"] == str(trajectory_id) and body["version"] == version
    logged = violations(caplog)
    assert logged and {(r.service, r.stream, r.version) for r in logged} == {
        ("trajectory", str(trajectory_id), version)}


def test_a_command_on_a_tampered_trajectory_is_refused_and_records_nothing(world, caplog):
    app, url, client, tokens, secrets = world
    trajectory_id = refer(app, referred_on=dt.date(2008, 2, 4))
    edit(app, url, trajectory_id, b"2008-02-04", b"2008-01-04")
    recorded = app.recorder.max_notification_id()
    response = post_report(client, secrets, "agens", trajectory_id,
                           {"type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-10"})
    is_integrity_problem(response)
    assert app.recorder.max_notification_id() == recorded


def test_a_deleted_row_is_an_integrity_problem_not_a_500(world):
    app, url, client, tokens, secrets = world
    trajectory_id = refer(app)
    assert post_report(client, secrets, "agens", trajectory_id, {
        "type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-10"}).status_code == 202
    assert execute(url, f"DELETE FROM {table(url)} WHERE originator_id = %s AND originator_version = %s",
                   (stored_id(url, trajectory_id), 2)) == 1
    body = is_integrity_problem(client.get(f"/trajectories/{trajectory_id}/history", headers=auth(tokens)))
    assert body["version"] == 3


def test_an_edited_tariff_is_not_served_and_no_command_builds_on_it(world):
    app, url, client, tokens, _ = world
    contract_id = ProviderContract.create_id("agens", "social-activation", "Diagnose")
    contract = client.get(f"/contracts/{contract_id}", headers=auth(tokens, "region-staff"))
    assert contract.status_code == 200, contract.text
    assert contract.json()["tariff_eur"] == 750

    edit(app, url, contract_id, b'"tariff_eur":750', b'"tariff_eur":950')
    response = client.get(f"/contracts/{contract_id}", headers=auth(tokens, "region-staff"))
    is_integrity_problem(response)
    assert "950" not in response.text
    listed = client.get("/contracts", headers=auth(tokens, "region-staff"))
    is_integrity_problem(listed)
    recorded = app.recorder.max_notification_id()
    changed = client.post(f"/contracts/{contract_id}/places", headers=auth(tokens, "region-contract-manager"),
                          json={"places": 99, "on": "2008-03-01", "reason": "more demand"})
    is_integrity_problem(changed)
    assert app.recorder.max_notification_id() == recorded


def test_a_forged_snapshot_is_never_loaded(world, caplog):
    """Snapshots are derived state the chain does not cover: each is sealed with a key
    outside the store, and one that does not open is set aside and the aggregate is
    loaded from its (verified) events instead."""
    app, url, client, tokens, _ = world
    from trajectory.contracting import DisciplineCapacity
    capacity_id = DisciplineCapacity.create_id("focus2move", LEAD)
    for _ in range(3):
        refer(app)
    before = app.repository.get(capacity_id)
    app.take_snapshot(capacity_id)
    snapshot = app.snapshots.recorder.select_events(capacity_id, desc=True, limit=1)[0]
    in_use = repr(len(before.holding.get("agens", []))).encode()
    raw = bytes(snapshot.state)
    assert b'"agens"' in raw
    forged = raw.replace(b'"agens"', b'"zzzzz"', 1)
    assert execute(url, f"UPDATE {table(url, 'snapshots')} SET state = %s WHERE originator_id = %s "
                        "AND originator_version = %s",
                   (forged, stored_id(url, capacity_id), snapshot.originator_version)) == 1
    caplog.set_level(logging.INFO)
    after = app.repository.get(capacity_id)
    assert after.holding == before.holding and in_use
    assert any(r.stream == str(capacity_id) for r in violations(caplog))
