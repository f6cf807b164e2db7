"""Webhooks out against a real HTTP receiver on loopback, over the real broker and real
stores: the trajectory service process as `main.build` wires it (HTTP, relay, inbox,
assignment desk and webhook sender as background jobs) notifies a provider whose
receiver is down, then failing, then hanging past the timeout, then back — and every
attempt can be read back. And a receiver that never recovers: dead-lettered, retried."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import tomllib
import uuid

import httpx
import pytest
from standardwebhooks import Webhook

from contracts import kafka
from contracts.envelope import envelope, from_record, source_urn, to_record
from contracts.events import ClientReferred
from contracts.runtime import Settings
from contracts.service import Outcome, store_env
from contracts.webhooks import sign
from infra.demo import write_credentials
from tests.support.kafka_tools import eventually, fresh_topics, read_all
from tests.trajectory.receiver import Receiver, free_port
from trajectory.application import TrajectoryApplication, TrajectoryConfig
from trajectory.delivery import WebhookSender
from trajectory.main import build
from trajectory.subscriptions import Backoff

pytestmark = [pytest.mark.kafka]

ASSIGNED = "nl.reintegratie.trajectory.provider-assigned.v1"
PLAN = "nl.reintegratie.trajectory.plan-agreed.v1"
LEAD = "Directe bemiddeling en Nazorg"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def bearer(tokens: dict[str, str], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[who]}"}


@pytest.fixture
async def service(bootstrap, database_url, tmp_path):
    """The trajectory process, on fresh topics and its own consumer group."""
    credentials, tokens = write_credentials(tmp_path / "config")
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", "trajectory", groups=(group,))
    port = free_port()
    settings = Settings(service="trajectory", bootstrap_servers=bootstrap,
                        database_url=database_url("trajectory"), host="127.0.0.1", port=port)
    running = build(settings, {
        "TWEESPOOR_CREDENTIALS_FILE": str(credentials), "TRAJECTORY_ALLOW_HTTP_CALLBACKS": "1",
        "TRAJECTORY_WEBHOOK_FIRST_DELAY": "0.5", "TRAJECTORY_WEBHOOK_MAX_ATTEMPTS": "6",
        "TRAJECTORY_WEBHOOK_TIMEOUT": "0.5", "TRAJECTORY_DESK_SECONDS": "0.05"})
    running.app.group = group  # type: ignore[attr-defined]
    running.consumes_from, running.publishes_to = (topics["intake"],), topics["trajectory"]
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await eventually(lambda: _healthy(client, task), timeout=30)
        yield running, client, tokens, topics, credentials
    stop.set()
    await asyncio.wait_for(task, timeout=30)


async def _healthy(client: httpx.AsyncClient, task: asyncio.Task) -> bool:
    if task.done():
        task.result()  # raises what stopped it
    try:
        return (await client.get("/health")).status_code == 200
    except httpx.TransportError:
        return False


async def test_a_provider_hears_of_its_assignment_through_a_receiver_that_is_down_fails_hangs_and_recovers(
        service, bootstrap):
    running, client, tokens, topics, credentials_file = service
    receiver, secret = Receiver(hang_seconds=1.5), new_secret()  # not listening yet: down
    subscription = (await client.post("/subscriptions", headers=bearer(tokens, "agens-provider"), json={
        "callback_url": receiver.url, "event_types": [ASSIGNED, PLAN], "secret": secret})).json()
    deliveries_url = f"/subscriptions/{subscription['subscription_id']}/deliveries"

    trajectory_id = uuid.uuid4()
    producer = kafka.producer(bootstrap, "intake-stand-in")
    await producer.start()
    try:
        data = ClientReferred(trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                              municipality="alkmaar", programme="focus2move", benefit="bijstand",
                              referred_on=dt.date(2008, 2, 4))
        key, value, headers = to_record(envelope(data, source=source_urn("alkmaar", "tweespoor-intake"),
                                                 origin="stand-in/1/0", sequence=1, time=dt.datetime.now(dt.UTC)))
        await producer.send_and_wait(topics["intake"], value, key=key, headers=headers)
    finally:
        await producer.stop()

    async def attempts(count: int):
        async def check():
            found = (await client.get(deliveries_url, headers=bearer(tokens, "agens-provider"))).json()
            return found if found and len(found[0]["attempts"]) >= count else None
        return (await eventually(check, timeout=30))[0]

    await attempts(1)  # refused: nobody listening
    receiver.mode = "fail"
    receiver.up()
    try:
        await attempts(2)
        receiver.mode = "hang"
        await attempts(3)
        receiver.mode = "ok"
        delivery = await attempts(4)
    finally:
        receiver.mode = "ok"

    assert delivery["state"] == "delivered" and delivery["event_type"] == ASSIGNED
    outcomes = [(a["number"], a["status_code"], a["error"]) for a in delivery["attempts"]]
    assert outcomes == [(1, None, "ConnectError"), (2, 500, None), (3, None, "timeout"), (4, 204, None)]
    at = [dt.datetime.fromisoformat(a["at"]) for a in delivery["attempts"]]
    gaps = [(b - a).total_seconds() for a, b in zip(at, at[1:], strict=False)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0  # exponential backoff

    sent = [r for r in receiver.received if r.headers["webhook-id"] == delivery["message_id"]]
    assert len(sent) == 3  # the same message each time it got through (500, hang, 204)
    notification = Webhook(secret).verify(sent[-1].body, sent[-1].headers)
    assert notification["type"] == ASSIGNED and notification["subject"] == str(trajectory_id)
    assert "data" not in notification
    path = notification["dataref"].removeprefix(str(client.base_url).rstrip("/"))
    assert (await client.get(path, headers=bearer(tokens, "agens-provider"))).json()["state"] == "assigned"
    assert (await client.get(path, headers=bearer(tokens, "dhg-provider"))).status_code == 404

    # The provider reports back through the running service; the next notification goes straight through.
    agens_secret = next(c["webhook_secret"] for c in tomllib.loads(credentials_file.read_text())["credential"]
                        if c.get("provider") == "agens")
    body = json.dumps({"type": "plan-agreed", "discipline": LEAD, "agreed_on": "2008-02-08"}).encode()
    reported = await client.post(f"/providers/agens/trajectories/{trajectory_id}/reports", content=body,
                                 headers=sign(agens_secret, body))
    assert reported.status_code == 202
    await eventually(lambda: any(json.loads(r.body)["type"] == PLAN for r in receiver.received if r.answered == 204))
    receiver.down()

    records = await eventually(lambda: _published(bootstrap, topics["trajectory"], 3, trajectory_id))
    assert [from_record(r.key, r.value, list(r.headers)).attributes.type.split(".")[-2] for r in records] == [
        "opened", "provider-assigned", "plan-agreed"]


async def _published(bootstrap: str, topic: str, at_least: int, trajectory_id: uuid.UUID):
    """The trajectory's own records (the topic also carries the tender's reference data)."""
    records = [r for r in await read_all(bootstrap, topic) if r.key == str(trajectory_id).encode()]
    return records if len(records) >= at_least else None


async def test_a_receiver_that_never_recovers_dead_letters_the_delivery_and_a_retry_delivers_it(
        database_url, bootstrap):
    app = TrajectoryApplication(store_env(database_url("trajectory")),
                                config=TrajectoryConfig(allow_http_callbacks=True,
                                                        backoff=Backoff(first_delay=0.1, max_attempts=3)))
    receiver = Receiver(mode="fail")
    receiver.up()
    try:
        secret = new_secret()
        subscription = app.subscribe("agens", callback_url=receiver.url, event_types=[ASSIGNED], secret=secret)
        referral = ClientReferred(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                                  municipality="alkmaar", programme="focus2move", benefit="bijstand",
                                  referred_on=dt.date(2008, 2, 4))
        event = envelope(referral, source=source_urn("alkmaar", "tweespoor-intake"), origin="x/1/0",
                         sequence=1, time=dt.datetime.now(dt.UTC))
        assert app.apply(event, "intake", 0, 0) is Outcome.APPLIED
        app.run_desk()
        sender = WebhookSender(app, timeout=1.0)
        subscription_id = uuid.UUID(subscription["subscription_id"])

        async with httpx.AsyncClient(timeout=1.0) as client:
            async def dead_lettered():
                await sender.run_once(client)
                found = app.deliveries(subscription_id, "agens")
                return found if found and found[0]["state"] == "dead-lettered" else None

            [delivery] = await eventually(dead_lettered, timeout=20)
            assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500]
            await asyncio.sleep(0.5)
            await sender.run_once(client)
            assert len(app.delivery(uuid.UUID(delivery["delivery_id"]), "agens")["attempts"]) == 3  # no more tries

            receiver.mode = "ok"
            app.retry_delivery(uuid.UUID(delivery["delivery_id"]), "agens")

            async def delivered():
                await sender.run_once(client)
                found = app.delivery(uuid.UUID(delivery["delivery_id"]), "agens")
                return found if found["state"] == "delivered" else None

            final = await eventually(delivered, timeout=20)
        assert [a["status_code"] for a in final["attempts"]] == [500, 500, 500, 204]
    finally:
        receiver.down()
        app.close()
