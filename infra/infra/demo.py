"""Demo configuration: credentials for every kind of caller, made fresh for each run.

The services read only the hashed file (`credentials.toml`); the plain tokens go to
`tokens.toml` beside it, for the person trying the demo (and for the tests). Nothing
here is a real secret: each run makes new ones.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

from contracts.access import hash_token, new_token
from contracts.municipalities import MUNICIPALITIES
from contracts.providers import PROVIDERS


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
    hashed, plain = [], []
    for entry in _entries():
        token = new_token()
        tokens[entry["id"]] = token
        lines = ["[[credential]]"] + [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        hashed.append("\n".join(lines + [f'token_sha256 = "{hash_token(token)}"']))
        plain.append(f'"{entry["id"]}" = "{token}"')
    credentials = directory / "credentials.toml"
    credentials.write_text("# Made by `tweespoor run` for this run only.\n\n" + "\n\n".join(hashed) + "\n")
    (directory / "tokens.toml").write_text(
        "# Bearer tokens of this demo run (the services keep only their hashes).\n"
        + "\n".join(plain) + "\n")
    for path in (credentials, directory / "tokens.toml"):
        path.chmod(0o600)
    return credentials, tokens
