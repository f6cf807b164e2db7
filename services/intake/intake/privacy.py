"""Personal data, sealed per person: BSN, name and date of birth.

Each person has their own AES-256-GCM key, kept in a table beside the event store (not
in it: events are never deleted, keys must be). Their personal data is stored only
sealed with that key, bound to their pseudonymous client id. Deleting the key makes
every copy unreadable at once — crypto-shredding — while the events, counts and hash
chains around it stay intact.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

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
    def key(self, client_id: uuid.UUID, *, create: bool) -> bytes | None: ...
    def shred(self, client_id: uuid.UUID) -> bool: ...


class MemoryKeyStore:
    """Keys in memory, for unit tests."""

    def __init__(self) -> None:
        self._keys: dict[uuid.UUID, bytes] = {}
        self._lock = threading.Lock()

    def key(self, client_id: uuid.UUID, *, create: bool) -> bytes | None:
        with self._lock:
            if create and client_id not in self._keys:
                self._keys[client_id] = AESGCM.generate_key(bit_length=256)
            return self._keys.get(client_id)

    def shred(self, client_id: uuid.UUID) -> bool:
        with self._lock:
            return self._keys.pop(client_id, None) is not None


class SqlKeyStore:
    """Keys in the service's own database (SQLite or PostgreSQL), in `person_keys`."""

    def __init__(self, datastore: Any, placeholder: str) -> None:
        self._datastore = datastore
        self._p = placeholder
        with datastore.transaction(commit=True) as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS person_keys ("
                           "client_id TEXT PRIMARY KEY, key_b64 TEXT NOT NULL)")

    def key(self, client_id: uuid.UUID, *, create: bool) -> bytes | None:
        p = self._p
        with self._datastore.transaction(commit=create) as cursor:
            if create:
                cursor.execute(f"INSERT INTO person_keys (client_id, key_b64) VALUES ({p}, {p}) "
                               "ON CONFLICT (client_id) DO NOTHING",
                               (str(client_id), _b64(AESGCM.generate_key(bit_length=256))))
            cursor.execute(f"SELECT key_b64 FROM person_keys WHERE client_id = {p}", (str(client_id),))
            row = cursor.fetchone()
        if row is None:
            return None
        value = row["key_b64"] if isinstance(row, dict) else row[0]
        return base64.b64decode(value)

    def shred(self, client_id: uuid.UUID) -> bool:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM person_keys WHERE client_id = {self._p} RETURNING client_id",
                           (str(client_id),))
            return cursor.fetchone() is not None


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

