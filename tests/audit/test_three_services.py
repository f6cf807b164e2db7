"""The audit over the running system: intake, trajectory and coaching as their mains build
them, their HTTP APIs served for real, their outboxes and inboxes on the real broker, and
reporting's auditor API on top. One trajectory goes from a referral to a placement and
into coaching; then

- the check compares all three services' stores with Kafka, and they agree;
- every event names who caused it (a user's credential, a provider, or the service on its
  own), the same from Kafka as from the stores;
- the caller's `traceparent` travels over HTTP and Kafka through every service it causes
  work in, and each one's processing log holds its part of the trace, with no user and
  no personal data in it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from typing import Any

import httpx
import pytest
import uvicorn

from contracts import kafka, tracing
from contracts.access import Credentials
from contracts.audit import store_timeline
from contracts.inbox import Inbox
from contracts.outbox import OutboxRelay
from contracts.runtime import Settings, _Server
from contracts.webhooks import sign
from infra.demo import write_credentials
from tests.support.kafka_tools import eventually, fresh_topics, header, read_all

pytestmark = [pytest.mark.kafka]

BSN, NAME = "123456782", "Sanne Proefpersoon"  # made up; passes the 11-test
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class System:
    """The three event-sourced services and reporting, wired as in production except for
    fresh topics and consumer groups (the broker is shared with other tests)."""

    def __init__(self, services: dict[str, Any], urls: dict[str, str], tokens: dict[str, str],
                 secrets: dict[str, str], topics: dict[str, str]) -> None:
        self.services, self.urls, self.tokens, self.secrets, self.topics = services, urls, tokens, secrets, topics

    def auth(self, credential: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[credential]}"}

    def app(self, name: str) -> Any:
        return self.services[name].app

    def processing(self, name: str, trace_id: str | None = None) -> list[dict[str, Any]]:
        return self.services[name].processing_log.records(trace_id)

    async def report(self, trajectory_id: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        content = json.dumps(body).encode()
        async with httpx.AsyncClient(base_url=self.urls["trajectory"]) as client:
            return await client.post(f"/providers/agens/trajectories/{trajectory_id}/reports", content=content,
                                     headers={**sign(self.secrets["agens"], content), **headers})

    async def audit(self, path: str, **params: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.services["reporting"].api)
        async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
            return await client.get(path, params=params, headers=self.auth("esf-auditor"), timeout=60)


@pytest.fixture
async def system(bootstrap, tmp_path):
    from coaching.main import build as coaching
    from intake.main import build as intake
    from reporting.main import build as reporting
    from trajectory.main import build as trajectory

    path, tokens = write_credentials(tmp_path / "config")
    env = {"TWEESPOOR_CREDENTIALS_FILE": str(path), "INTAKE_PSEUDONYM_KEY": "test-pseudonym-key"}
    ports = {name: free_port() for name in ("intake", "trajectory", "coaching")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    def settings(name: str) -> Settings:
        return Settings(name, bootstrap, f"sqlite:///{tmp_path}/{name}.db", "127.0.0.1", ports.get(name, 0))

    services = {"intake": intake(settings("intake"), env), "trajectory": trajectory(settings("trajectory"), env),
                "coaching": coaching(settings("coaching"), env),
                "reporting": reporting(settings("reporting"), {**env, **{
                    f"REPORTING_{name.upper()}_URL": url for name, url in urls.items()}})}
    for name, service in services.items():
        service.app.group = f"{name}-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", "trajectory", "coaching",
                                groups=tuple(s.app.group for s in services.values()))
    producer = kafka.producer(bootstrap, "audit-three-services")
    await producer.start()
    consumes = {"trajectory": ("intake", "coaching"), "coaching": ("trajectory",),
                "reporting": ("intake", "trajectory", "coaching")}
    workers = [OutboxRelay(app=services[n].app, translate=services[n].translate, producer=producer,
                           topic=topics[n], system=f"tweespoor-{n}").run() for n in ("intake", "trajectory", "coaching")]
    workers += [Inbox(bootstrap_servers=bootstrap, topics=[topics[t] for t in sources], target=services[n].app,
                      producer=producer, processing_log=services[n].processing_log, system=f"tweespoor-{n}").run()
                for n, sources in consumes.items()]

    async def desk() -> None:  # as the trajectory service's background job does
        while True:
            if not await asyncio.to_thread(services["trajectory"].app.run_desk):
                await asyncio.sleep(0.1)

    servers = [_Server(uvicorn.Config(services[n].api, host="127.0.0.1", port=port, log_config=None,
                                      access_log=False)) for n, port in ports.items()]
    tasks = [asyncio.create_task(w) for w in [*workers, desk(), *(s.serve() for s in servers)]]
    await eventually(lambda: all(s.started for s in servers) or any(t.done() for t in tasks), timeout=30)
    secrets = {p.provider: p.webhook_secret for p in Credentials.from_file(path) if p.kind == "provider"}
    yield System(services, urls, tokens, secrets, topics)
    for server in servers:
        server.should_exit = True
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    for service in services.values():
        with contextlib.suppress(Exception):
            service.app.close()
        service.processing_log.close()


async def refer_and_place(system: System) -> tuple[str, httpx.Response, httpx.Response]:
    """A referral from Alkmaar's case system (under the caller's trace), the provider's
    reports up to a placement (the last under a trace of its own), and coaching started."""
    async with httpx.AsyncClient(base_url=system.urls["intake"]) as client:
        referred = await client.post("/referrals", headers={
            **system.auth("alkmaar-case-system"), "traceparent": f"00-{CALLER_TRACE}-b7ad6b7169203331-01"}, json={
            "bsn": BSN, "name": NAME, "date_of_birth": "1979-06-14", "municipality": "alkmaar",
            "programme": "focus2move", "benefit": "bijstand", "distance_to_labour_market": "large",
            "referred_on": "2008-02-04", "caseworker_id": "cw-1"})
    assert referred.status_code == 201, referred.text
    trajectory_id = referred.json()["trajectory_id"]
    trajectories = system.app("trajectory")
    await eventually(lambda: uuid.UUID(trajectory_id) in trajectories.repository
                     and trajectories.trajectory(uuid.UUID(trajectory_id))["assignments"], timeout=60)
    for body in ({"type": "plan-agreed", "discipline": "Directe bemiddeling en Nazorg", "agreed_on": "2008-02-08"},
                 {"type": "contract-started", "discipline": "Directe bemiddeling en Nazorg",
                  "starts_on": "2008-02-11", "ends_on": "2008-08-10"}):
        assert (await system.report(trajectory_id, body)).status_code == 202
    placed = await system.report(trajectory_id, {
        "type": "placed-in-job", "discipline": "Directe bemiddeling en Nazorg", "employer": "Bakkerij De Korenschoof",
        "hours_per_week": 32, "contract_type": "fixed-term", "starts_on": "2008-06-02"})
    assert placed.status_code == 202, placed.text
    reporting = system.app("reporting")
    await eventually(lambda: (doc := reporting.document("trajectory", trajectory_id))
                     and any(p.startswith(system.topics["coaching"]) for p in doc["log"]), timeout=90)
    return trajectory_id, referred, placed


async def test_the_check_compares_all_three_stores_with_kafka_and_both_name_who_caused_each_event(system):
    trajectory_id, _, _ = await refer_and_place(system)

    # Once reporting has read all the stores published, the check compares all three
    # services' stores with Kafka, and they agree.
    def in_stores() -> int:
        return sum(len(store_timeline(s.app, s.app.audit_index, s.translate, f"tweespoor-{n}",
                                      uuid.UUID(trajectory_id))[0])
                   for n, s in system.services.items() if n != "reporting")

    await eventually(lambda: len(system.app("reporting").document("trajectory", trajectory_id)["log"])
                     == in_stores(), timeout=60)
    check = await system.audit(f"/audit/trajectories/{trajectory_id}/check")
    assert check.status_code == 200, check.text
    assert check.json()["agree"] is True, check.json()

    from_stores = (await system.audit(f"/audit/trajectories/{trajectory_id}/timeline", source="stores")).json()
    from_kafka = (await system.audit(f"/audit/trajectories/{trajectory_id}/timeline", source="kafka")).json()
    assert {e["service"] for e in from_stores["events"]} == {
        "tweespoor-intake", "tweespoor-trajectory", "tweespoor-coaching"}
    assert check.json()["events"] == len(from_stores["events"]) == len(from_kafka["events"])

    actors = {e["what"].split(".")[-2]: e["actor"] for e in from_stores["events"]}
    assert actors["client-referred"] == "user:alkmaar-case-system"  # the municipality's case system
    assert actors["opened"] == "service:tweespoor-trajectory"  # the trajectory service, on the referral
    assert actors["provider-assigned"] == "service:tweespoor-trajectory"  # its assignment desk
    assert actors["placed-in-job"] == actors["contract-started"] == "provider:agens"  # the provider's reports
    assert actors["started"] == "service:tweespoor-coaching"  # coaching, on the placement
    assert [(e["id"], e["actor"]) for e in from_kafka["events"]] == \
        [(e["id"], e["actor"]) for e in from_stores["events"]]


async def test_one_trace_runs_from_the_callers_request_through_every_service_it_causes_work_in(system, bootstrap):
    trajectory_id, referred, placed = await refer_and_place(system)
    intake_span = tracing.parse(referred.headers["traceparent"])
    assert intake_span[0] == CALLER_TRACE

    # intake (HTTP) -> trajectory (consumes the referral, opens the trajectory) -> coaching
    # (consumes the opening) -> reporting (consumes all of them)
    [asked] = system.processing("intake", CALLER_TRACE)
    assert asked["activity_id"] == "tweespoor-intake:POST /referrals" and asked["span_id"] == intake_span[1]
    opened = await eventually(lambda: system.processing("trajectory", CALLER_TRACE))
    assert opened[0]["activity_id"].startswith("tweespoor-trajectory:consume ")
    assert opened[0]["activity_id"].endswith("client-referred.v1") and opened[0]["parent_span_id"] == intake_span[1]
    followed = await eventually(lambda: system.processing("coaching", CALLER_TRACE))
    assert followed[0]["activity_id"].endswith("trajectory.opened.v1")
    assert followed[0]["parent_span_id"] == opened[0]["span_id"]
    reported = await eventually(lambda: len(r := system.processing("reporting", CALLER_TRACE)) >= 2 and r)
    assert {r["parent_span_id"] for r in reported} >= {intake_span[1], opened[0]["span_id"]}
    assert {r["trace_id"] for r in [asked, *opened, *followed, *reported]} == {CALLER_TRACE}

    # A provider's report starts a trace of its own: trajectory (HTTP) -> coaching -> reporting.
    placement_trace, placement_span, _ = tracing.parse(placed.headers["traceparent"])
    records = await read_all(bootstrap, system.topics["trajectory"])
    placed_record = next(r for r in records if header(r, "ce_type").endswith("placed-in-job.v1"))
    assert tracing.parse(header(placed_record, "traceparent"))[:2] == (placement_trace, placement_span)
    coached = await eventually(lambda: [r for r in system.processing("coaching", placement_trace)
                                        if r["activity_id"].endswith("placed-in-job.v1")])
    assert coached[0]["parent_span_id"] == placement_span and coached[0]["subject_id"] == trajectory_id
    await eventually(lambda: any(r["parent_span_id"] == coached[0]["span_id"]
                                 for r in system.processing("reporting", placement_trace)))

    # The auditor's read is processing too, under its own trace; the access log has who.
    check = await system.audit(f"/audit/trajectories/{trajectory_id}/check")
    audit_trace = tracing.parse(check.headers["traceparent"])[0]
    [read] = system.processing("reporting", audit_trace)
    assert read["activity_id"] == "tweespoor-reporting:GET /audit/trajectories/{trajectory_id}/check"
    assert read["subject_type"] == "trajectory" and read["subject_id"] == trajectory_id
    for name in ("intake", "trajectory", "coaching"):  # the read reached into each store
        [served] = await eventually(lambda: system.processing(name, audit_trace))  # logged after answering
        assert served["activity_id"] == f"tweespoor-{name}:GET /audit/trajectories/{{trajectory_id}}/events"
        assert served["parent_span_id"] == read["span_id"]

    # No user identity and no personal data in any processing log.
    everything = repr([system.processing(n) for n in ("intake", "trajectory", "coaching", "reporting")])
    for forbidden in (BSN, NAME, "1979-06-14", "alkmaar-case-system", "agens-provider", "esf-auditor", "Bearer"):
        assert forbidden not in everything
