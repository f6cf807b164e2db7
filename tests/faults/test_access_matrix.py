"""Access, proven per credential kind against every endpoint of the four services.

Each service is assembled as its process assembles it (`build`, with the demo credentials)
and holds one real Alkmaar trajectory (a referral, a provider assigned, a coaching plan).
Every route is then called by every kind of caller: a municipality's case system, another
municipality's, a municipality's staff, the regional staff, a coach, the assigned provider,
another provider, the ESF auditor, and no one. The table below says who may use what; a
route missing from it fails the test, so a new endpoint cannot ship without a decision.

- allowed: not refused (401/403), and not hidden (404) where the resource is theirs;
- hidden: 404, the same answer as for a trajectory that does not exist;
- anyone else with a token: 403; no token or an unknown one: 401.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.runtime import Settings
from infra.demo import write_credentials
from infra.kafka import free_port
from infra.run import demo_referrals
from services.coaching.tests.support import Feed
from services.coaching.tests.support import Trajectory as CoachedTrajectory
from services.trajectory.tests.conftest import INTAKE_TOPIC, referred

MUNICIPALITY, OTHER_MUNICIPALITY = "alkmaar-case-system", "bergen-case-system"
STAFF, REGION, COACH, AUDITOR = "alkmaar-staff", "region-staff", "alkmaar-coach", "esf-auditor"
PROVIDER, OTHER_PROVIDER = "provider", "other-provider"  # resolved once a provider is assigned
CALLERS = (MUNICIPALITY, OTHER_MUNICIPALITY, STAFF, REGION, COACH, PROVIDER, OTHER_PROVIDER, AUDITOR)

CASE = {MUNICIPALITY}
REPORTS = {MUNICIPALITY, OTHER_MUNICIPALITY, STAFF, REGION, AUDITOR}
TRAJECTORY_READERS = {MUNICIPALITY, OTHER_MUNICIPALITY, STAFF, REGION, AUDITOR, PROVIDER, OTHER_PROVIDER}
PROVIDERS = {PROVIDER, OTHER_PROVIDER}
COACHING_READERS = {MUNICIPALITY, OTHER_MUNICIPALITY, COACH, PROVIDER, OTHER_PROVIDER}
NOBODY: set[str] = set()
SIGNED = "signed"  # a provider webhook: a Standard Webhooks signature, never a bearer token

# (service, method, path) -> (who may, who of those gets 404 for Alkmaar's resource)
POLICY: dict[tuple[str, str, str], tuple[set[str] | str, set[str]]] = {
    ("intake", "POST", "/referrals"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/referrals/{referral_id}"): (CASE | {OTHER_MUNICIPALITY}, {OTHER_MUNICIPALITY}),
    ("intake", "POST", "/referrals/{referral_id}/withdrawal"): (CASE | {OTHER_MUNICIPALITY}, {OTHER_MUNICIPALITY}),
    ("intake", "GET", "/referrals/{referral_id}/person"): (CASE | {OTHER_MUNICIPALITY}, {OTHER_MUNICIPALITY}),
    ("intake", "POST", "/referrals/{referral_id}/person/erasure"): (CASE | {OTHER_MUNICIPALITY}, {OTHER_MUNICIPALITY}),
    ("intake", "POST", "/job-offers"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/job-offers/{offer_id}"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "POST", "/job-offers/{offer_id}/acceptance"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "POST", "/job-offers/{offer_id}/refusal"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "POST", "/job-offers/{offer_id}/return"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    # The employment registry: request files (with BSNs) and answer files, for the
    # municipality's case system only; another municipality's request looks like none.
    ("intake", "POST", "/registry/requests"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/registry/requests/{request_id}"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/registry/requests/{request_id}/request.csv"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/registry/requests/{request_id}/answers.csv"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "POST", "/registry/answers"): (CASE | {OTHER_MUNICIPALITY}, NOBODY),
    ("intake", "GET", "/audit/trajectories/{trajectory_id}/events"): ({AUDITOR}, NOBODY),
    ("intake", "GET", "/audit/processing-log"): ({AUDITOR}, NOBODY),
    ("intake", "GET", "/audit/store"): ({AUDITOR}, NOBODY),

    # Staff read figures and contracts, not one person's trajectory.
    ("trajectory", "GET", "/trajectories/{trajectory_id}"): (
        TRAJECTORY_READERS, {OTHER_MUNICIPALITY, OTHER_PROVIDER, STAFF, REGION}),
    # The history names who recorded what: for the municipality and auditors only.
    ("trajectory", "GET", "/trajectories/{trajectory_id}/history"): (
        TRAJECTORY_READERS - {PROVIDER}, {OTHER_MUNICIPALITY, OTHER_PROVIDER, STAFF, REGION}),
    ("trajectory", "GET", "/programmes"): (TRAJECTORY_READERS, NOBODY),
    ("trajectory", "GET", "/contracts"): (TRAJECTORY_READERS, NOBODY),
    ("trajectory", "GET", "/contracts/{contract_id}"): (TRAJECTORY_READERS, NOBODY),
    ("trajectory", "GET", "/capacity"): (TRAJECTORY_READERS, NOBODY),
    # Contract management is for a contract administrator; no demo credential is one.
    ("trajectory", "POST", "/contracts"): (NOBODY, NOBODY),
    ("trajectory", "POST", "/contracts/{contract_id}/places"): (NOBODY, NOBODY),
    ("trajectory", "POST", "/contracts/{contract_id}/extension"): (NOBODY, NOBODY),
    ("trajectory", "POST", "/programmes/{slug}/volume"): (NOBODY, NOBODY),
    ("trajectory", "POST", "/providers/{provider}/trajectories/{trajectory_id}/reports"): (SIGNED, NOBODY),
    ("trajectory", "GET", "/caseload"): (PROVIDERS, NOBODY),
    ("trajectory", "POST", "/subscriptions"): (PROVIDERS, NOBODY),
    ("trajectory", "GET", "/subscriptions"): (PROVIDERS, NOBODY),
    ("trajectory", "GET", "/subscriptions/{subscription_id}"): (PROVIDERS, NOBODY),
    ("trajectory", "DELETE", "/subscriptions/{subscription_id}"): (PROVIDERS, NOBODY),
    ("trajectory", "GET", "/subscriptions/{subscription_id}/deliveries"): (PROVIDERS, NOBODY),
    ("trajectory", "GET", "/deliveries/{delivery_id}"): (PROVIDERS, NOBODY),
    ("trajectory", "POST", "/deliveries/{delivery_id}/retry"): (PROVIDERS, NOBODY),
    ("trajectory", "GET", "/audit/trajectories/{trajectory_id}/events"): ({AUDITOR}, NOBODY),
    ("trajectory", "GET", "/audit/processing-log"): ({AUDITOR}, NOBODY),
    ("trajectory", "GET", "/audit/store"): ({AUDITOR}, NOBODY),
    ("trajectory", "GET", "/audit/reference-data/events"): ({AUDITOR}, NOBODY),

    ("coaching", "GET", "/plans"): (COACHING_READERS, NOBODY),
    # Alkmaar's plan is coached by Alkmaar's own coach: providers do not know it exists.
    ("coaching", "GET", "/plans/{plan_id}"): (COACHING_READERS, {OTHER_MUNICIPALITY} | PROVIDERS),
    ("coaching", "POST", "/plans/{plan_id}/check-ins"): ({COACH}, NOBODY),
    ("coaching", "POST", "/plans/{plan_id}/job-losses"): ({COACH}, NOBODY),
    ("coaching", "POST", "/plans/{plan_id}/placements"): ({COACH}, NOBODY),
    ("coaching", "POST", "/plans/{plan_id}/reopen-requests"): ({COACH}, NOBODY),
    ("coaching", "POST", "/plans/{plan_id}/follow-up-contacts"): ({COACH}, NOBODY),
    ("coaching", "POST", "/plans/{plan_id}/employer-confirmations"): ({COACH}, NOBODY),
    # Lists, filtered to what the caller may see: another municipality's coach's list is
    # empty for a case system; another coach is unknown to a provider, and another
    # municipality to a case system.
    ("coaching", "GET", "/coaches/{coach_id}/overdue-check-ins"): (COACHING_READERS, PROVIDERS),
    ("coaching", "GET", "/municipalities/{municipality}/overdue-check-ins"): (
        COACHING_READERS, {OTHER_MUNICIPALITY}),
    ("coaching", "GET", "/followed-trajectories"): (COACHING_READERS, NOBODY),
    ("coaching", "POST", "/providers/{provider}/plans/{plan_id}/check-ins"): (SIGNED, NOBODY),
    ("coaching", "POST", "/providers/{provider}/plans/{plan_id}/job-losses"): (SIGNED, NOBODY),
    ("coaching", "POST", "/providers/{provider}/plans/{plan_id}/placements"): (SIGNED, NOBODY),
    ("coaching", "POST", "/providers/{provider}/plans/{plan_id}/reopen-requests"): (SIGNED, NOBODY),
    ("coaching", "POST", "/providers/{provider}/plans/{plan_id}/employer-confirmations"): (SIGNED, NOBODY),
    ("coaching", "GET", "/audit/trajectories/{trajectory_id}/events"): ({AUDITOR}, NOBODY),
    ("coaching", "GET", "/audit/processing-log"): ({AUDITOR}, NOBODY),
    ("coaching", "GET", "/audit/store"): ({AUDITOR}, NOBODY),

    ("reporting", "GET", "/figures"): (REPORTS, NOBODY),
    ("reporting", "GET", "/event-counts"): (REPORTS, NOBODY),
    ("reporting", "GET", "/exports/esf-participants.csv"): (REPORTS, NOBODY),
    ("reporting", "GET", "/exports/srg-provisions.csv"): (REPORTS, NOBODY),
    ("reporting", "GET", "/exports/provider-results.csv"): (REPORTS, NOBODY),
    ("reporting", "GET", "/exports/durable-outflow.csv"): (REPORTS, NOBODY),
    ("reporting", "GET", "/exports/lbu-destinations.csv"): (REPORTS, NOBODY),
    ("reporting", "GET", "/audit/trajectories/{trajectory_id}/timeline"): ({AUDITOR}, NOBODY),
    ("reporting", "GET", "/audit/trajectories/{trajectory_id}/as-of"): ({AUDITOR}, NOBODY),
    ("reporting", "GET", "/audit/trajectories/{trajectory_id}/check"): ({AUDITOR}, NOBODY),
    ("reporting", "GET", "/audit/access-log"): ({AUDITOR}, NOBODY),
}
# Open to anyone: liveness, and the dashboard's own sign-in (a session cookie, tested in
# tests/browser), which answers unauthenticated visitors with the sign-in page.
PUBLIC = {"/health", "/dashboard", "/dashboard/login", "/dashboard/logout"}


class World:
    """The four assembled services, one Alkmaar trajectory in each, and who is who."""

    def __init__(self, tmp_path) -> None:
        credentials, self.tokens = write_credentials(tmp_path / "config")
        closed_port = free_port()
        self.services: dict[str, Any] = {}
        for name, build in _builders().items():
            # No broker: a port nothing listens on, so reads from Kafka fail fast.
            settings = Settings.from_env(name, {"TWEESPOOR_DATA_DIR": str(tmp_path),
                                                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port}"})
            self.services[name] = build(settings, {"TWEESPOOR_CREDENTIALS_FILE": str(credentials),
                                                   "INTAKE_PSEUDONYM_KEY": "access-matrix"})
        self.clients = {name: TestClient(s.api, raise_server_exceptions=False)
                        for name, s in self.services.items()}
        self.ids = self._seed()

    def _seed(self) -> dict[str, str]:
        body = next(r for r in demo_referrals() if r["municipality"] == "alkmaar")
        created = self.clients["intake"].post("/referrals", json=body, headers=self.auth(MUNICIPALITY))
        assert created.status_code == 201, created.text
        trajectory = self.services["trajectory"].app
        event = referred(municipality="alkmaar", programme="reintegration", referred_on=dt.date(2007, 3, 5))
        trajectory.apply(event, INTAKE_TOPIC, 0, 0)
        trajectory.run_desk()
        trajectory_id = event.data.trajectory_id
        shown = self.clients["trajectory"].get(f"/trajectories/{trajectory_id}", headers=self.auth(MUNICIPALITY))
        assigned = shown.json()["assignments"][0]["provider"]
        other = next(t for t in self.tokens if t.endswith("-provider") and t != f"{assigned}-provider")
        self.tokens[PROVIDER], self.tokens[OTHER_PROVIDER] = self.tokens[f"{assigned}-provider"], self.tokens[other]
        coached = CoachedTrajectory("alkmaar")
        Feed(self.services["coaching"].app)(coached.opened(), coached.placed(dt.date(2007, 6, 4)))
        self.services["reporting"].app.apply(event, INTAKE_TOPIC, 0, 0)  # reporting knows it too
        plans = self.clients["coaching"].get("/plans", headers=self.auth(COACH)).json()
        return {"referral_id": created.json()["referral_id"], "trajectory_id": str(trajectory_id),
                "plan_id": _only_plan(plans), "provider": assigned, "coach_id": "municipality:alkmaar",
                "municipality": "alkmaar", "slug": "reintegration"}

    def auth(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[caller]}"}

    def url(self, path: str) -> str:
        """The path with its parameters filled: Alkmaar's real resources where there are
        any, a well-formed id of nothing otherwise."""
        values = self.ids | {name: str(uuid.uuid4()) for name in ("offer_id", "contract_id",
                                                                   "subscription_id", "delivery_id",
                                                                   "request_id")}
        return path.format(**values)

    def close(self) -> None:
        for service in self.services.values():
            service.app.close()


def _builders() -> dict[str, Any]:
    from coaching.main import build as coaching
    from intake.main import build as intake
    from reporting.main import build as reporting
    from trajectory.main import build as trajectory

    return {"intake": intake, "trajectory": trajectory, "coaching": coaching, "reporting": reporting}


def _only_plan(plans: Any) -> str:
    items = plans["plans"] if isinstance(plans, dict) else plans
    assert len(items) == 1, plans
    return str(items[0].get("plan_id") or items[0]["id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("access"))
    yield w
    w.close()


def routes(world: World) -> list[tuple[str, str, str]]:
    """Every operation of every service, as its OpenAPI document publishes it."""
    return [(name, method.upper(), path)
            for name, service in world.services.items()
            for path, operations in service.api.openapi()["paths"].items()
            for method in operations]


def call(world: World, service: str, method: str, path: str, headers: dict[str, str]):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return world.clients[service].request(method, world.url(path), json=body, headers=headers,
                                          follow_redirects=False)


def test_every_endpoint_has_an_access_decision(world):
    undecided = [r for r in routes(world) if r not in POLICY and r[2] not in PUBLIC]
    assert not undecided, f"routes without an access decision: {undecided}"
    gone = [r for r in POLICY if r not in routes(world)]
    assert not gone, f"decisions for routes that no longer exist: {gone}"


@pytest.mark.parametrize("caller", CALLERS)
def test_each_credential_kind_gets_what_its_role_and_tenant_allow_and_nothing_else(world, caller):
    wrong = []
    for service, method, path in routes(world):
        if path in PUBLIC:
            continue
        allowed, hidden = POLICY[(service, method, path)]
        response = call(world, service, method, path, world.auth(caller))
        status = response.status_code
        if allowed == SIGNED:
            expected_ok = status == 401  # a bearer token is not a signature
        elif caller in hidden:
            # Another tenant's resource looks like one that does not exist (a POST with an
            # invalid body may be refused for the body first: that says nothing either).
            expected_ok = status == 404 or (method == "POST" and status == 422)
        elif caller in allowed:
            expected_ok = status not in (401, 403) and (status < 500 or _unavailable(response)) and not (
                status == 404 and "{" in path and _own(path))
        else:
            expected_ok = status == 403
        if not expected_ok:
            wrong.append(f"{method} {service}{path} -> {status}: {response.text[:120]}")
        if status >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), (service, path)
    assert not wrong, f"{caller}:\n" + "\n".join(wrong)


def _unavailable(response: Any) -> bool:
    """A 503 that tells when to come back: no Kafka runs beside this test."""
    return response.status_code == 503 and "retry-after" in response.headers


def test_an_audit_replay_while_kafka_is_unreachable_is_a_503_with_retry_after(world):
    trajectory_id = world.ids["trajectory_id"]
    response = world.clients["reporting"].get(f"/audit/trajectories/{trajectory_id}/timeline",
                                              headers=world.auth(AUDITOR))
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["title"] == "Event log unavailable"


def _own(path: str) -> bool:
    """Whether the path names only Alkmaar's seeded resources (so an allowed caller finds it)."""
    return not any(p in path for p in ("offer_id", "contract_id", "subscription_id", "delivery_id",
                                       "request_id"))


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_without_a_valid_token_every_endpoint_but_the_public_ones_says_401(world, token):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    wrong = []
    for service, method, path in routes(world):
        if path in PUBLIC:
            continue
        status = call(world, service, method, path, headers).status_code
        if status != 401:
            wrong.append(f"{method} {service}{path} -> {status}")
    assert not wrong, "\n".join(wrong)


def test_the_public_endpoints_reveal_nothing_about_trajectories(world):
    for service in world.services:
        health = world.clients[service].get("/health")
        assert health.status_code == 200
        assert world.ids["trajectory_id"] not in health.text
    dashboard = world.clients["reporting"].get("/dashboard", follow_redirects=False)
    assert dashboard.status_code in (200, 303) and world.ids["trajectory_id"] not in dashboard.text
