"""Webhooks out, without a network: who is notified of what, how thin and signed it is,
the backoff schedule on an injected clock, the dead-letter state, and that every attempt
can be read back. (The real HTTP receiver is in tests/trajectory.)"""

import base64
import datetime as dt
import json
import os
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from contracts.problems import MEDIA_TYPE
from services.trajectory.tests.conftest import auth, new_app, post_report, refer
from contracts.service import store_env
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication
from trajectory.subscriptions import Backoff

ASSIGNED = "nl.reintegratie.trajectory.provider-assigned.v1"
PLAN = "nl.reintegratie.trajectory.plan-agreed.v1"
CLOSED = "nl.reintegratie.trajectory.closed.v1"
LEAD = "Directe bemiddeling en Nazorg"


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def subscribe(client, tokens, provider="agens", types=(ASSIGNED, PLAN, CLOSED), url="https://agens.example/hooks"):
    response = client.post("/subscriptions", headers=auth(tokens, f"{provider}-provider"),
                           json={"callback_url": url, "event_types": list(types), "secret": secret()})
    assert response.status_code == 201, response.text
    return response.json()


def test_backoff_doubles_up_to_its_ceiling():
    backoff = Backoff(first_delay=30, factor=2, max_delay=300, max_attempts=8)
    assert [backoff.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]


def test_a_subscription_is_validated_and_never_echoes_its_secret(client, tokens):
    headers = auth(tokens, "agens-provider")
    good = {"callback_url": "https://agens.example/hooks", "event_types": [ASSIGNED], "secret": secret()}
    created = client.post("/subscriptions", headers=headers, json=good)
    assert created.status_code == 201 and good["secret"] not in created.text
    for field, value in [("callback_url", "http://agens.example/hooks"), ("callback_url", "ftp://x"),
                         ("callback_url", "https://user:pw@agens.example/"),
                         ("event_types", ["nl.reintegratie.referral.client-referred.v1"]),
                         ("secret", "whsec_" + "A" * 30), ("secret", "x" * 40)]:
        response = client.post("/subscriptions", headers=headers, json=good | {field: value})
        assert response.status_code == 422, (field, value)
        assert response.headers["content-type"].startswith(MEDIA_TYPE)
        assert response.json()["errors"][0]["field"] == field
        assert str(value) not in response.text


def test_providers_see_and_cancel_only_their_own_subscriptions(client, tokens):
    mine = subscribe(client, tokens, "agens")
    assert [s["subscription_id"] for s in client.get("/subscriptions", headers=auth(tokens, "agens-provider")).json()] \
        == [mine["subscription_id"]]
    url = f"/subscriptions/{mine['subscription_id']}"
    assert client.get(url, headers=auth(tokens, "dhg-provider")).status_code == 404
    assert client.delete(url, headers=auth(tokens, "dhg-provider")).status_code == 404
    assert client.get(url, headers=auth(tokens, "alkmaar-case-system")).status_code == 403
    assert client.delete(url, headers=auth(tokens, "agens-provider")).json()["state"] == "cancelled"
    assert client.get("/subscriptions", headers=auth(tokens, "agens-provider")).json() == []


def test_only_the_trajectorys_providers_hear_of_it_and_only_what_they_subscribed_to(app, client, tokens, provider_secrets):
    agens = subscribe(client, tokens, "agens")
    subscribe(client, tokens, "iwa-wurkympuls")  # the other Focus2Move lead, not assigned this one
    social_work = subscribe(client, tokens, "alexander-calder", types=(ASSIGNED,))
    trajectory = refer(app)
    post_report(client, provider_secrets, "agens", trajectory, {
        "type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-10", "disciplines": ["Maatschappelijk werk"]})
    app.run_desk()
    app.dispatch()
    heard = {(d["subscription_id"], d["event_type"]) for s in (agens, social_work)
             for d in app.deliveries(_uuid(s["subscription_id"]), s["provider"])}
    assert heard == {(agens["subscription_id"], ASSIGNED), (agens["subscription_id"], PLAN),
                     (social_work["subscription_id"], ASSIGNED)}
    assert len([d for d in app.deliveries(_uuid(agens["subscription_id"]), "agens")
                if d["event_type"] == ASSIGNED]) == 2  # its own assignment, and the social worker's
    assert app.due_deliveries(app.clock(), 100)  # all due now
    iwa = client.get("/subscriptions", headers=auth(tokens, "iwa-wurkympuls-provider")).json()[0]
    assert app.deliveries(_uuid(iwa["subscription_id"]), "iwa-wurkympuls") == []


def test_a_notification_is_thin_what_and_which_trajectory_and_where_to_read_it(app, client, tokens):
    subscribe(client, tokens, "agens", types=(ASSIGNED,))
    trajectory = refer(app)
    app.dispatch()
    [job] = app.due_deliveries(app.clock())
    body = json.loads(job.body)
    assert set(body) == {"specversion", "id", "source", "type", "subject", "time", "sequence", "dataref"}
    assert body["type"] == ASSIGNED and body["subject"] == str(trajectory)
    assert body["dataref"] == f"http://127.0.0.1:8002/trajectories/{trajectory}"
    assert job.message_id.startswith("msg_")


def test_dispatching_twice_schedules_each_event_once(app, client, tokens):
    subscribe(client, tokens, "agens", types=(ASSIGNED,))
    refer(app)
    app.dispatch()
    first = app.due_deliveries(app.clock(), 100)
    assert app.dispatch() >= 0 and app.dispatch() == 0
    assert app.due_deliveries(app.clock(), 100) == first


def test_failed_attempts_back_off_exponentially_then_the_delivery_is_dead_lettered(clock, credentials):
    app = new_app(clock, backoff=Backoff(first_delay=60, factor=2, max_delay=3600, max_attempts=4))
    client, tokens = TestClient(create_api(app, credentials[0])), credentials[1]
    subscription = subscribe(client, tokens, "agens", types=(ASSIGNED,))
    refer(app)
    app.dispatch()
    waits = []
    for attempt in range(4):
        [job] = app.due_deliveries(clock())
        state = app.record_attempt(job.delivery_id, at=clock(), status_code=503 if attempt % 2 else None,
                                   error=None if attempt % 2 else "ConnectError", duration_ms=12)
        delivery = app.delivery(job.delivery_id, "agens")
        if state == "pending":
            due = dt.datetime.fromisoformat(delivery["next_attempt_at"])
            waits.append((due - clock()).total_seconds())
            assert app.due_deliveries(clock()) == []  # not before it is due
            clock.now = due
    assert waits == [60, 120, 240]
    assert state == "dead-lettered" and delivery["next_attempt_at"] is None
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["attempts"]] == [
        (1, None, "ConnectError"), (2, 503, None), (3, None, "ConnectError"), (4, 503, None)]
    clock.advance(days=30)
    assert app.due_deliveries(clock()) == []

    listed = client.get(f"/subscriptions/{subscription['subscription_id']}/deliveries",
                        headers=auth(tokens, "agens-provider"), params={"state": "dead-lettered"}).json()
    assert [d["delivery_id"] for d in listed] == [delivery["delivery_id"]]
    assert client.get(f"/deliveries/{delivery['delivery_id']}", headers=auth(tokens, "dhg-provider")).status_code == 404

    retried = client.post(f"/deliveries/{delivery['delivery_id']}/retry", headers=auth(tokens, "agens-provider"))
    assert retried.json()["state"] == "pending"
    [job] = app.due_deliveries(clock())
    assert app.record_attempt(job.delivery_id, at=clock(), status_code=204, error=None, duration_ms=5) == "delivered"
    again = client.post(f"/deliveries/{delivery['delivery_id']}/retry", headers=auth(tokens, "agens-provider"))
    assert again.status_code == 409 and again.json()["state"] == "delivered"


def test_a_cancelled_subscription_gets_nothing_more(app, client, tokens):
    subscription = subscribe(client, tokens, "agens", types=(ASSIGNED,))
    refer(app)
    app.dispatch()
    client.delete(f"/subscriptions/{subscription['subscription_id']}", headers=auth(tokens, "agens-provider"))
    assert app.due_deliveries(app.clock()) == []
    [delivery] = app.deliveries(_uuid(subscription["subscription_id"]), "agens")
    assert delivery["state"] == "cancelled"
    assert app.secrets.get(_uuid(subscription["subscription_id"])) is None


def test_plain_http_callbacks_only_where_allowed(clock, credentials):
    app = new_app(clock, allow_http_callbacks=True)
    client = TestClient(create_api(app, credentials[0]))
    subscribe(client, credentials[1], url="http://127.0.0.1:9/hooks")


def _uuid(value):
    return uuid.UUID(value)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Nothing here sends: the sender is tested against a real receiver elsewhere."""
    monkeypatch.setattr(httpx.AsyncClient, "post", None)


def test_an_event_no_one_subscribed_to_costs_no_rebuild_and_a_subscriber_still_hears(app, client, tokens, monkeypatch):
    rebuilt = []
    recipients = app._recipients
    monkeypatch.setattr(app, "_recipients", lambda e: rebuilt.append(e.originator_id) or recipients(e))
    unheard = refer(app)
    assert app.dispatch() > 0 and rebuilt == []  # no subscription at all
    closings = subscribe(client, tokens, "agens", types=(CLOSED,))
    refer(app)
    assert app.dispatch() > 0 and rebuilt == []  # subscribed, but not to these types
    assignments = subscribe(client, tokens, "agens", types=(ASSIGNED,))
    heard = refer(app)
    app.dispatch()
    assert set(rebuilt) == {heard}
    [delivery] = app.deliveries(_uuid(assignments["subscription_id"]), "agens")
    assert (delivery["trajectory_id"], delivery["event_type"]) == (str(heard), ASSIGNED)
    assert app.deliveries(_uuid(closings["subscription_id"]), "agens") == []
    assert str(unheard) not in {d["trajectory_id"] for d in app.deliveries(_uuid(assignments["subscription_id"]), "agens")}
    app.dispatch()  # the deliveries it recorded itself
    assert app.dispatch() == 0  # every event passed over is behind the dispatcher's position


def test_a_subscription_recorded_by_another_process_is_seen_by_the_dispatcher(tmp_path, clock, credentials):
    url = f"sqlite:///{tmp_path}/trajectory.db"
    dispatcher = TrajectoryApplication(store_env(url), clock=clock)
    other = TrajectoryApplication(store_env(url), clock=clock)
    try:
        client, tokens = TestClient(create_api(other, credentials[0])), credentials[1]
        refer(dispatcher)
        dispatcher.dispatch()  # the index is now caught up past the log's start
        subscription = subscribe(client, tokens, "agens", types=(ASSIGNED,))
        heard = refer(dispatcher)
        dispatcher.dispatch()
        [delivery] = dispatcher.deliveries(_uuid(subscription["subscription_id"]), "agens")
        assert delivery["trajectory_id"] == str(heard)
    finally:
        dispatcher.close()
        other.close()
