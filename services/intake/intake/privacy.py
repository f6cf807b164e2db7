"""Personal data, sealed per person: BSN, name and date of birth.

Each person has their own AES-256-GCM key, kept in a table beside the event store
(`intake.tables`; not in it: events are never deleted, keys must be). Their personal
data is stored only sealed with that key, bound to their pseudonymous client id. Deleting the key makes
every copy unreadable at once — crypto-shredding — while the events, counts and hash
chains around it stay intact.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


@dataclass(frozen=True)
class Person:
    """Who a referral is about. Lives only inside intake, and only sealed at rest."""

    bsn: str
    name: str
    date_of_birth: dt.date

    def __repr__(self) -> str:  # never in a log line or a traceback
        return "Person(<sealed>)"


class KeyStore(Protocol):
    """Each person's key, where it can be deleted: `intake.tables.PersonKeys`."""

    def key(self, client_id: uuid.UUID, *, create: bool) -> bytes | None: ...
    def shred(self, client_id: uuid.UUID) -> bool: ...


def new_key() -> bytes:
    """A person's own key: AES-256."""
    return AESGCM.generate_key(bit_length=256)


class Vault:
    """Seals and opens a person's data with that person's key."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys

    def seal(self, client_id: uuid.UUID, person: Person) -> str:
        key = self.keys.key(client_id, create=True)
        assert key is not None
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps({"bsn": person.bsn, "name": person.name,
                            "date_of_birth": person.date_of_birth.isoformat()}).encode()
        return _b64(nonce + AESGCM(key).encrypt(nonce, plain, client_id.bytes))

    def open(self, client_id: uuid.UUID, sealed: str) -> Person | None:
        """The person, or None once their key is gone."""
        key = self.keys.key(client_id, create=False)
        if key is None:
            return None
        blob = base64.b64decode(sealed)
        try:
            plain = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], client_id.bytes)
        except InvalidTag:
            return None
        fields = json.loads(plain)
        return Person(fields["bsn"], fields["name"], dt.date.fromisoformat(fields["date_of_birth"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()

