"""Fixtures of the trajectory service's own tests: an in-memory store, an injectable
clock, small tenders, the demo credentials (plus a contract administrator), and helpers
to refer clients and to sign provider reports."""

from __future__ import annotations

import datetime as dt
import json
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials, hash_token, new_token
from contracts.envelope import CloudEvent, envelope, source_urn
from contracts.events import ClientReferred, ReferralWithdrawn
from contracts.webhooks import sign
from infra.demo import write_credentials
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication, TrajectoryConfig
from trajectory.tender import TenderData, parse

RECORDED_AT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
INTAKE_TOPIC = "tweespoor.intake.events.v1"


class Clock:
    """An injectable now; `today` moves it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def small_tender(*, places: int = 1, providers: tuple[str, ...] = ("agens",),
                 ends_on: dt.date = dt.date(2008, 4, 30)) -> TenderData:
    """A re-integration programme in Alkmaar and Heiloo whose lots have few places."""
    contracts = [{"provider": p, "programme": "reintegration", "discipline": d,
                  "municipalities": ["alkmaar", "heiloo"], "places": places, "tariff_eur": 1000}
                 for p in providers for d in ("Voortraject", "Directe bemiddeling en Nazorg")]
    return parse({
        "tender": {"slug": "small", "title": "A small tender"},
        "budget": [{"slug": "small", "title": "Small", "programmes": ["reintegration"],
                    "total_eur": 100_000}],
        "programme": [{
            "slug": "reintegration", "name": "Reïntegratie", "starts_on": dt.date(2006, 1, 1),
            "ends_on": ends_on, "yearly_volume": 10,
            "municipalities": ["alkmaar", "heiloo", "bergen"],
            "disciplines": ["Voortraject", "Directe bemiddeling en Nazorg"],
            "entry_discipline": "Voortraject", "reopen_discipline": "Directe bemiddeling en Nazorg",
        }],
        "contract": contracts,
    }, source="small.toml")


def new_app(clock: Clock | None = None, tender: TenderData | None = None, **config: Any) -> TrajectoryApplication:
    return TrajectoryApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, tender=tender,
                                 clock=clock or Clock(RECORDED_AT),
                                 config=TrajectoryConfig(**config))


@pytest.fixture
def clock() -> Clock:
    return Clock(RECORDED_AT)


@pytest.fixture
def app(clock) -> Iterator[TrajectoryApplication]:
    application = new_app(clock)
    yield application
    application.close()


def referred(*, municipality: str = "alkmaar", programme: str = "focus2move",
             referred_on: dt.date = dt.date(2008, 2, 4), route: str = "referral",
             wnk_contract_starts_on: dt.date | None = None,
             trajectory_id: uuid.UUID | None = None) -> CloudEvent:
    data = ClientReferred(
        trajectory_id=trajectory_id or uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
        municipality=municipality, programme=programme,
        benefit="bijstand" if programme != "reintegration" else "anw",
        referred_on=referred_on, route=route, wnk_contract_starts_on=wnk_contract_starts_on)
    return envelope(data, source=source_urn(municipality, "tweespoor-intake"),
                    origin=f"{data.referral_id}/1/0", sequence=1, time=RECORDED_AT)


def withdrawn(trajectory_id: uuid.UUID, *, municipality: str = "alkmaar",
              on: dt.date = dt.date(2008, 3, 1), reason: str = "moved-away") -> CloudEvent:
    data = ReferralWithdrawn(trajectory_id=trajectory_id, referral_id=uuid.uuid4(),
                             municipality=municipality, withdrawn_on=on, reason=reason)
    return envelope(data, source=source_urn(municipality, "tweespoor-intake"),
                    origin=f"{data.referral_id}/2/0", sequence=2, time=RECORDED_AT)


_offsets = iter(range(10**9))


def refer(app: TrajectoryApplication, **kwargs: Any) -> uuid.UUID:
    """Applies a referral as the inbox would and lets the desk decide on it."""
    event = referred(**kwargs)
    app.apply(event, INTAKE_TOPIC, 0, next(_offsets))
    app.run_desk()
    return event.data.trajectory_id


# --- credentials and signed requests -----------------------------------------------------


@pytest.fixture(scope="session")
def credentials(tmp_path_factory) -> tuple[Credentials, dict[str, str], dict[str, str]]:
    """The demo credentials, plus a contract administrator; (credentials, tokens, secrets)."""
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return with_administrator(path, tokens)


def with_administrator(path: Path, tokens: dict[str, str]):
    entries = tomllib.loads(path.read_text())["credential"]
    admin_token = new_token()
    entries.append({"id": "region-contract-manager", "kind": "staff", "scopes": ["contracts:write"],
                    "token_sha256": hash_token(admin_token)})
    secrets = {e["provider"]: e["webhook_secret"] for e in entries if e["kind"] == "provider"}
    return Credentials.from_entries(entries), tokens | {"region-contract-manager": admin_token}, secrets


@pytest.fixture
def tokens(credentials) -> dict[str, str]:
    return credentials[1]


@pytest.fixture
def provider_secrets(credentials) -> dict[str, str]:
    return credentials[2]


@pytest.fixture
def client(app, credentials) -> TestClient:
    return TestClient(create_api(app, credentials[0]))


def auth(tokens: dict[str, str], credential: str = "alkmaar-case-system") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[credential]}"}


def signed(secret: str, body: dict[str, Any] | bytes, *, msg_id: str | None = None,
           timestamp: dt.datetime | None = None) -> tuple[bytes, dict[str, str]]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return content, sign(secret, content, msg_id=msg_id or f"msg_{uuid.uuid4().hex}", timestamp=timestamp)


def post_report(client: TestClient, secrets: dict[str, str], provider: str, trajectory_id: Any,
                body: dict[str, Any], **signing: Any):
    content, headers = signed(secrets[provider], body, **signing)
    return client.post(f"/providers/{provider}/trajectories/{trajectory_id}/reports",
                       content=content, headers=headers)
