"""What a newcomer needs to explore the demo (issue 15, item 5): a credential that may
change contracts, the providers' webhook secrets where the README says, and referrals
that are recognisably demo data."""

from __future__ import annotations

import stat
import tomllib

from fastapi.testclient import TestClient

from contracts.access import Credentials
from contracts.webhooks import sign
from infra.demo import WEBHOOK_SECRETS, write_credentials
from infra.run import demo_referrals
from intake.domain import is_valid_bsn
from trajectory.api import create_api
from trajectory.application import TrajectoryApplication


def test_the_demo_contract_manager_may_change_a_contract_and_the_change_is_audited(tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    app = TrajectoryApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        client = TestClient(create_api(app, Credentials.from_file(path)))
        admin = {"Authorization": f"Bearer {tokens['region-contract-manager']}"}
        contract = next(c for c in client.get("/contracts", headers=admin).json() if c["provider"] == "agens")
        changed = client.post(f"/contracts/{contract['contract_id']}/places", headers=admin,
                              json={"places": contract["places"] + 5, "on": "2008-02-01",
                                    "reason": "trying the demo"})
        assert changed.status_code == 200, changed.text
        history = client.get(f"/contracts/{contract['contract_id']}",
                             headers={"Authorization": f"Bearer {tokens['esf-auditor']}"}).json()["changes"]
        assert history[-1]["by"] == "region-contract-manager"
        # Nobody else of the demo may: a case system is refused.
        other = client.post(f"/contracts/{contract['contract_id']}/places", json={
            "places": 1, "on": "2008-02-01", "reason": "x"},
            headers={"Authorization": f"Bearer {tokens['alkmaar-case-system']}"})
        assert other.status_code == 403
    finally:
        app.close()


def test_each_provider_s_webhook_secret_is_in_the_secrets_file_and_verifies(tmp_path):
    path, _ = write_credentials(tmp_path / "config")
    secrets = tomllib.loads((tmp_path / "config" / WEBHOOK_SECRETS).read_text())
    credentials = Credentials.from_file(path)
    providers = {p.provider: p.webhook_secret for p in credentials if p.kind == "provider"}
    assert secrets == providers and all(s.startswith("whsec_") for s in secrets.values())
    assert stat.S_IMODE((tmp_path / "config" / WEBHOOK_SECRETS).stat().st_mode) == 0o600
    headers = sign(secrets["agens"], b"{}")
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_the_demo_referrals_are_recognisably_demo_data():
    referrals = demo_referrals()
    assert all(r["name"].startswith("Demo Deelnemer ") for r in referrals)
    assert all(r["caseworker_id"].startswith("demo-caseworker-") for r in referrals)
    assert all(r["bsn"].startswith("99999") and is_valid_bsn(r["bsn"]) for r in referrals)
    assert len({r["bsn"] for r in referrals}) == len(referrals)
    assert all(r["referred_on"] <= "2008-02-01" for r in referrals)  # inside the tender's period
