"""The secrets providers give with their subscriptions, beside the event store, not in it.

Events are kept forever; a secret must be replaceable and removable. So a subscription's
events name no secret, and the secret sits in a table of its own in the service's
database (SQLite or PostgreSQL), deleted when the subscription is cancelled.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Protocol


class SecretStore(Protocol):
    def put(self, subscription_id: uuid.UUID, secret: str) -> None: ...
    def get(self, subscription_id: uuid.UUID) -> str | None: ...
    def delete(self, subscription_id: uuid.UUID) -> None: ...


class MemorySecrets:
    """For unit tests on the in-memory store."""

    def __init__(self) -> None:
        self._secrets: dict[uuid.UUID, str] = {}
        self._lock = threading.Lock()

    def put(self, subscription_id: uuid.UUID, secret: str) -> None:
        with self._lock:
            self._secrets[subscription_id] = secret

    def get(self, subscription_id: uuid.UUID) -> str | None:
        return self._secrets.get(subscription_id)

    def delete(self, subscription_id: uuid.UUID) -> None:
        with self._lock:
            self._secrets.pop(subscription_id, None)


class SqlSecrets:
    """`webhook_secrets` in the service's own database, through the store's connections."""

    def __init__(self, datastore: Any, placeholder: str) -> None:
        self._datastore, self._p = datastore, placeholder
        with datastore.transaction(commit=True) as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS webhook_secrets ("
                           "subscription_id TEXT PRIMARY KEY, secret TEXT NOT NULL)")

    def put(self, subscription_id: uuid.UUID, secret: str) -> None:
        p = self._p
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"INSERT INTO webhook_secrets (subscription_id, secret) VALUES ({p}, {p}) "
                           "ON CONFLICT (subscription_id) DO UPDATE SET secret = excluded.secret",
                           (str(subscription_id), secret))

    def get(self, subscription_id: uuid.UUID) -> str | None:
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT secret FROM webhook_secrets WHERE subscription_id = {self._p}",
                           (str(subscription_id),))
            row = cursor.fetchone()
        if row is None:
            return None
        return row["secret"] if isinstance(row, dict) else row[0]

    def delete(self, subscription_id: uuid.UUID) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM webhook_secrets WHERE subscription_id = {self._p}",
                           (str(subscription_id),))


def secret_store_for(recorder: Any) -> SecretStore:
    """The SQL table when the store is a database, memory when it is in memory."""
    datastore = getattr(recorder, "datastore", None)
    if datastore is None:
        return MemorySecrets()
    placeholder = "%s" if "postgres" in type(datastore).__module__ else "?"
    return SqlSecrets(datastore, placeholder)
