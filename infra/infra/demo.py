"""Demo configuration: credentials for every kind of caller, made fresh for each run.

The services read only the hashed file (`credentials.toml`); the plain tokens go to
`tokens.toml` beside it, for the person trying the demo (and for the tests). Nothing
here is a real secret: each run makes new ones.

A provider signs its webhooks (Standard Webhooks) with the `webhook_secret` of its
credential in `credentials.toml`; `webhook-secrets.toml` beside it has each provider's
secret by its name, for whoever plays the provider in the demo. `region-contract-manager`
may change contracts (`contracts:write`: places, extensions, new awards), so the audited
contract commands can be tried.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

from contracts.access import hash_token, new_token
from contracts.municipalities import MUNICIPALITIES
from contracts.providers import PROVIDERS

WEBHOOK_SECRETS = "webhook-secrets.toml"


def _entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for m in MUNICIPALITIES:
        entries.append({"id": f"{m}-case-system", "kind": "municipality", "municipality": m,
                        "scopes": ["referrals:read", "referrals:write", "persons:read", "persons:erase",
                                   "trajectories:read", "coaching:read", "reports:read"]})
        entries.append({"id": f"{m}-staff", "kind": "staff", "municipality": m,
                        "scopes": ["reports:read", "dashboard:read"]})
        entries.append({"id": f"{m}-coach", "kind": "coach", "municipality": m,
                        "scopes": ["coaching:read", "coaching:write"]})
    for slug in PROVIDERS:
        entries.append({"id": f"{slug}-provider", "kind": "provider", "provider": slug,
                        "scopes": ["trajectories:read", "trajectories:report", "coaching:write"],
                        "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()})
    entries.append({"id": "esf-auditor", "kind": "auditor",
                    "scopes": ["audit:read", "reports:read"]})
    entries.append({"id": "region-staff", "kind": "staff",
                    "scopes": ["reports:read", "reports:combined", "dashboard:read"]})
    # The region's contract manager: changes contracts through trajectory's audited commands.
    entries.append({"id": "region-contract-manager", "kind": "staff", "scopes": ["contracts:write"]})
    return entries


def _toml_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_credentials(directory: Path) -> tuple[Path, dict[str, str]]:
    """Writes `credentials.toml` (hashed, for the services) and `tokens.toml` (plain, for
    the user); returns the first's path and credential id -> token."""
    directory.mkdir(parents=True, exist_ok=True)
    tokens: dict[str, str] = {}
    hashed, plain, signing = [], [], []
    for entry in _entries():
        token = new_token()
        tokens[entry["id"]] = token
        lines = ["[[credential]]"] + [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        hashed.append("\n".join(lines + [f'token_sha256 = "{hash_token(token)}"']))
        plain.append(f'"{entry["id"]}" = "{token}"')
        if "webhook_secret" in entry:
            signing.append(f'"{entry["provider"]}" = {_toml_value(entry["webhook_secret"])}')
    credentials = directory / "credentials.toml"
    credentials.write_text("# Made by `tweespoor run` for this run only.\n\n" + "\n\n".join(hashed) + "\n")
    (directory / "tokens.toml").write_text(
        "# Bearer tokens of this demo run (the services keep only their hashes).\n"
        + "\n".join(plain) + "\n")
    (directory / WEBHOOK_SECRETS).write_text(
        "# Each provider's webhook signing secret for this demo run (Standard Webhooks: sign\n"
        "# `<webhook-id>.<webhook-timestamp>.<body>` with HMAC-SHA256 under the base64 part\n"
        "# after `whsec_`). The services read the same from credentials.toml.\n"
        + "\n".join(signing) + "\n")
    for path in (credentials, directory / "tokens.toml", directory / WEBHOOK_SECRETS):
        path.chmod(0o600)
    return credentials, tokens
