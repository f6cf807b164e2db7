"""W3C trace context on HTTP, the processing log it feeds, and the actor and trace stamped
on every stored event (no broker: an in-memory store, the service as its main builds it)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import tracing
from contracts.actors import stamp_of
from contracts.audit import integration_events_of
from contracts.runtime import Settings
from infra.demo import write_credentials
from intake.application import ReferralInput
from intake.main import build
from intake.privacy import Person

BSN, NAME = "111222333", "Ida Spoorzoeker"
TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize("header, valid", [
    (f"00-{TRACE}-{PARENT}-01", True),
    (f"00-{TRACE}-{PARENT}-00", True),  # not sampled is still a trace
    (f"01-{TRACE}-{PARENT}-01-later-fields", True),  # a later version may add fields
    (f"00-{TRACE.upper()}-{PARENT}-01", False),  # lowercase hex only
    (f"00-{'0' * 32}-{PARENT}-01", False),  # all-zero trace id
    (f"00-{TRACE}-{'0' * 16}-01", False),  # all-zero parent id
    (f"ff-{TRACE}-{PARENT}-01", False),  # version ff is forbidden
    (f"00-{TRACE}-{PARENT}-01-extra", False),  # version 00 has exactly four fields
    (f"00-{TRACE[:-1]}-{PARENT}-01", False),
    (f"00-{TRACE}-{PARENT}-01\n", False),  # no smuggled line ends
    (f" 00-{TRACE}-{PARENT}-01 ", True),  # optional whitespace around a header value
    ("", False), ("garbage", False), (BSN, False),
])
def test_a_traceparent_is_continued_when_valid_and_replaced_when_not(header, valid):
    span = tracing.continue_from(header)
    assert (span.trace_id == TRACE and span.parent_span_id == PARENT) is valid
    assert tracing.parse(span.traceparent) == (span.trace_id, span.span_id, span.flags)
    assert span.span_id != PARENT
    if not valid:
        assert span.parent_span_id is None  # a fresh root, not an error


@pytest.fixture
def intake(tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    service = build(Settings("intake", "127.0.0.1:1", "memory:", "127.0.0.1", 0),
                    {"TWEESPOOR_CREDENTIALS_FILE": str(path)})
    service.tokens = tokens
    yield service, TestClient(service.api), {"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}
    service.app.close()


def referral(bsn: str = BSN) -> dict:
    return {"bsn": bsn, "name": NAME, "date_of_birth": "1971-03-04", "municipality": "alkmaar",
            "programme": "focus2move", "benefit": "bijstand", "distance_to_labour_market": "large",
            "referred_on": "2026-10-01", "caseworker_id": "cw-1"}


def test_a_request_continues_the_callers_trace_and_answers_with_its_own_span(intake):
    service, client, auth = intake
    response = client.post("/referrals", json=referral(), headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert response.status_code == 201, response.text
    trace_id, span_id, _ = tracing.parse(response.headers["traceparent"])
    assert trace_id == TRACE and span_id != PARENT

    [record] = service.processing_log.records(TRACE)
    assert record["parent_span_id"] == PARENT and record["span_id"] == span_id
    assert record["activity_id"] == "tweespoor-intake:POST /referrals" and record["status"] == "ok"


def test_a_malformed_or_missing_traceparent_gets_a_fresh_trace_not_an_error(intake):
    _, client, auth = intake
    for bsn, headers in (("725763863", {"traceparent": "00-not-a-trace-01"}), ("162275869", {})):
        response = client.post("/referrals", json=referral(bsn), headers={**auth, **headers})
        assert response.status_code == 201, response.text
        assert tracing.parse(response.headers["traceparent"]) is not None
    refused = client.post("/referrals", json={}, headers={**auth, "traceparent": "zz"})
    assert refused.status_code == 422 and tracing.parse(refused.headers["traceparent"]) is not None


def test_auditors_read_a_services_part_of_a_trace(intake):
    service, client, auth = intake
    client.post("/referrals", json=referral(), headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"})
    auditor = {"Authorization": f"Bearer {service.tokens['esf-auditor']}"}
    answer = client.get("/audit/processing-log", params={"trace_id": TRACE}, headers=auditor)
    assert answer.status_code == 200
    assert [r["activity_id"] for r in answer.json()["records"]] == ["tweespoor-intake:POST /referrals"]
    assert client.get("/audit/processing-log", params={"trace_id": TRACE}, headers=auth).status_code == 403
    malformed = client.get("/audit/processing-log", params={"trace_id": "BSN"}, headers=auditor)
    assert malformed.status_code == 422 and malformed.headers["content-type"] == "application/problem+json"


def test_the_processing_log_names_no_user_and_no_person(intake):
    service, client, auth = intake
    created = client.post("/referrals", json=referral(), headers=auth).json()
    assert client.get(f"/referrals/{created['referral_id']}", headers=auth).status_code == 200
    assert client.get(f"/referrals/{uuid.uuid4()}", headers={"Authorization": "Bearer wrong"}).status_code == 401

    records = service.processing_log.records()
    assert [r["activity_id"] for r in records] == [
        "tweespoor-intake:POST /referrals", "tweespoor-intake:GET /referrals/{referral_id}",
        "tweespoor-intake:GET /referrals/{referral_id}"]
    assert [r["status"] for r in records] == ["ok", "ok", "error"]
    assert records[1]["subject_type"] == "referral" and records[1]["subject_id"] == created["referral_id"]
    text = repr(records)
    for personal in (BSN, NAME, "1971-03-04", "alkmaar-case-system", "Bearer"):
        assert personal not in text


def test_every_stored_event_carries_its_actor_and_trace_and_the_aggregates_never_see_them(intake):
    service, client, auth = intake
    response = client.post("/referrals", json=referral(), headers={**auth, "traceparent": f"00-{TRACE}-{PARENT}-01"})
    span = response.headers["traceparent"]
    app = service.app
    referral_id = uuid.UUID(response.json()["referral_id"])
    stored = app.recorder.select_events(referral_id)
    assert stored and all(stamp_of(app.mapper, s) == {"actor": "user:alkmaar-case-system", "traceparent": span}
                          for s in stored)
    assert "__stamp__" not in vars(app.mapper.to_domain_event(stored[0]))
    assert app.verify_chain(referral_id).intact  # the stamp is inside what the chain hashes

    published = integration_events_of(app, app.integration_events, "tweespoor-intake", referral_id)
    assert published and {e.attributes.actor for e in published} == {"user:alkmaar-case-system"}

    # What the service records on its own (here: a use case called with no caller) is
    # the service's doing.
    _, body = app.refer(ReferralInput(
        person=Person("192285142", NAME, dt.date(1971, 3, 4)), municipality="alkmaar", programme="focus2move",
        benefit="bijstand", uwv_registered_on=None, distance_to_labour_market="large",
        referred_on=dt.date(2026, 10, 1), caseworker_id="cw-2"))
    [own] = {stamp_of(app.mapper, s)["actor"] for s in app.recorder.select_events(uuid.UUID(body["referral_id"]))}
    assert own == "service:tweespoor-intake"
