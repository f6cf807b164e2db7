"""Who may call a service: bearer credentials from configuration, stored hashed.

Every client application (a municipality's case system, a provider, a coach, an auditor)
has its own token. Services keep only the token's SHA-256 (the tokens are long random
strings, so a plain hash is enough) with the kind of caller, its tenant and its scopes.
The file is TOML, named by `TWEESPOOR_CREDENTIALS_FILE`:

    [[credential]]
    id = "alkmaar-case-system"
    kind = "municipality"            # municipality | provider | coach | auditor | staff
    municipality = "alkmaar"         # the tenant, for municipality, coach and staff
    provider = "Agens"               # for provider and coach
    scopes = ["referrals:read", "referrals:write"]
    token_sha256 = "<hex>"
    webhook_secret = "whsec_..."     # providers only: signs webhooks both ways

A route asks for a caller through `contracts.web.auth` (`authenticated`, `require`).
"""

import hashlib
import os
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from contracts.municipalities import MUNICIPALITIES

Kind = Literal["municipality", "provider", "coach", "auditor", "staff"]
KINDS = ("municipality", "provider", "coach", "auditor", "staff")
ENV = "TWEESPOOR_CREDENTIALS_FILE"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as its credential describes it."""

    id: str
    kind: Kind
    scopes: frozenset[str]
    municipality: str | None = None
    provider: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    def sees_municipality(self, municipality: str) -> bool:
        """Tenant isolation: a caller bound to a municipality sees only that one."""
        return self.municipality is None or self.municipality == municipality


class Credentials:
    """The configured credentials, looked up by the hash of the presented token."""

    def __init__(self, principals_by_hash: dict[str, Principal]) -> None:
        self._by_hash = dict(principals_by_hash)

    @classmethod
    def from_file(cls, path: str | Path) -> "Credentials":
        entries = tomllib.loads(Path(path).read_text()).get("credential", [])
        return cls.from_entries(entries)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Credentials":
        path = (os.environ if env is None else env).get(ENV)
        if not path:
            raise RuntimeError(f"{ENV} is not set: name the TOML file with the credentials")
        return cls.from_file(path)

    @classmethod
    def from_entries(cls, entries: Iterable[dict[str, Any]]) -> "Credentials":
        by_hash: dict[str, Principal] = {}
        for entry in entries:
            kind = entry["kind"]
            if kind not in KINDS:
                raise ValueError(f"credential {entry.get('id')}: unknown kind {kind!r}")
            municipality = entry.get("municipality")
            if municipality is not None and municipality not in MUNICIPALITIES:
                raise ValueError(f"credential {entry['id']}: unknown municipality {municipality!r}")
            if kind == "municipality" and municipality is None:
                raise ValueError(f"credential {entry['id']}: a municipality credential names one")
            by_hash[entry["token_sha256"].lower()] = Principal(
                id=entry["id"], kind=kind, scopes=frozenset(entry.get("scopes", ())),
                municipality=municipality, provider=entry.get("provider"),
                webhook_secret=entry.get("webhook_secret"),
            )
        return cls(by_hash)

    def authenticate(self, token: str) -> Principal | None:
        return self._by_hash.get(hash_token(token))

    def provider(self, name: str) -> Principal | None:
        """The provider credential with this name (for verifying its webhooks)."""
        return next((p for p in self._by_hash.values()
                     if p.kind == "provider" and p.provider == name), None)

    def __iter__(self):
        return iter(self._by_hash.values())
