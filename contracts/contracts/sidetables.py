"""Rows kept beside a service's event store, not in it: what must be replaceable or
removable, which stored events never may be (a person's key, a provider's secret), and
indexes the events imply. One table of two text columns in the service's own database,
through the store's own connections (SQLite or PostgreSQL), or in memory when the store
is; each service keeps only its table's name and what the two columns mean."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from eventsourcing.persistence import PersistenceError

T = TypeVar("T")
CREATE_ATTEMPTS = 10  # replicas starting at once race to create the same table (pg_type)


class SideTable:
    """`name (key_column, value_column)`: with `unique=True` one value per key (the key is
    the primary key), else any number of distinct values per key (both are)."""

    def __init__(self, recorder: Any, name: str, key_column: str, value_column: str, *,
                 unique: bool = True) -> None:
        self._datastore = getattr(recorder, "datastore", None)
        self._name, self._key, self._value, self._unique = name, key_column, value_column, unique
        self._memory: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        if self._datastore is None:
            return
        self._p = "%s" if "postgres" in type(self._datastore).__module__ else "?"
        primary = key_column if unique else f"{key_column}, {value_column}"
        _retried(lambda: self._execute(
            f"CREATE TABLE IF NOT EXISTS {name} ({key_column} TEXT NOT NULL, "
            f"{value_column} TEXT NOT NULL, PRIMARY KEY ({primary}))"))

    # --- one value per key -------------------------------------------------------------

    def get(self, key: str) -> str | None:
        found = self.values(key)
        return found[0] if found else None

    def put(self, key: str, value: str) -> None:
        """Sets the key's value, replacing any other."""
        if self._datastore is None:
            with self._lock:
                self._memory[key] = [value]
            return
        self._execute(f"INSERT INTO {self._name} ({self._key}, {self._value}) VALUES ({self._p}, {self._p}) "
                      f"ON CONFLICT ({self._key}) DO UPDATE SET {self._value} = excluded.{self._value}",
                      (key, value))

    def put_new(self, key: str, value: str) -> str:
        """Sets the key's value unless it has one; returns the value it has (so two
        writers at once agree on the first)."""
        if self._datastore is None:
            with self._lock:
                return self._memory.setdefault(key, [value])[0]
        self._execute(f"INSERT INTO {self._name} ({self._key}, {self._value}) VALUES ({self._p}, {self._p}) "
                      "ON CONFLICT DO NOTHING", (key, value))
        found = self.get(key)
        assert found is not None  # just written, or kept from the first writer
        return found

    # --- any number of values per key --------------------------------------------------

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Adds (key, value) pairs; one that is there already changes nothing."""
        pairs = sorted(set(pairs))
        if not pairs:
            return
        if self._datastore is None:
            with self._lock:
                for key, value in pairs:
                    values = self._memory.setdefault(key, [])
                    if value not in values:
                        values.append(value)
            return
        with self._datastore.transaction(commit=True) as cursor:
            for pair in pairs:
                cursor.execute(f"INSERT INTO {self._name} ({self._key}, {self._value}) "
                               f"VALUES ({self._p}, {self._p}) ON CONFLICT DO NOTHING", pair)

    def values(self, key: str) -> list[str]:
        """The key's values, in order."""
        if self._datastore is None:
            with self._lock:
                return sorted(self._memory.get(key, ()))
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT {self._value} FROM {self._name} WHERE {self._key} = {self._p} "
                           f"ORDER BY {self._value}", (key,))
            return [row[self._value] if isinstance(row, dict) else row[0] for row in cursor.fetchall()]

    def delete(self, key: str) -> bool:
        """Removes the key and its values; False when it had none."""
        if self._datastore is None:
            with self._lock:
                return self._memory.pop(key, None) is not None
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {self._name} WHERE {self._key} = {self._p} RETURNING {self._key}",
                           (key,))
            return bool(cursor.fetchall())

    def _execute(self, statement: str, parameters: tuple[Any, ...] = ()) -> None:
        assert self._datastore is not None
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(statement, parameters)


def _retried(action: Callable[[], T]) -> T:
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return action()
        except PersistenceError:
            if attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise AssertionError("unreachable")
