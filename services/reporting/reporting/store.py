"""Reporting's own store: read models, with each projection's position per topic-partition
kept in the same transaction as its rows. SQLite by default, PostgreSQL in production."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from contracts.envelope import CloudEvent
from contracts.service import Outcome

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tracking (
        projection TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
        position BIGINT NOT NULL, PRIMARY KEY (projection, topic, partition))""",
    # (source, id) of every event applied: a relay's republished event counts once.
    """CREATE TABLE IF NOT EXISTS seen_events (
        source TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (source, id))""",
    """CREATE TABLE IF NOT EXISTS event_counts (
        type TEXT PRIMARY KEY, count BIGINT NOT NULL)""",
)


class ReportingStore:
    """The inbox target of reporting: applies every event to the read models once."""

    group = "reporting"
    projection = "counts"

    def __init__(self, database_url: str) -> None:
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        if database_url.startswith("sqlite:///"):
            path = unquote(database_url.removeprefix("sqlite:///"))
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn: Any = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._placeholder = "?"
        elif database_url.startswith(("postgresql://", "postgres://")):
            import psycopg  # only needed in production

            self._conn = psycopg.connect(database_url, autocommit=True)
            self._placeholder = "%s"
        else:
            raise ValueError("reporting needs an sqlite:/// or postgresql:// URL")
        with self._transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._placeholder)

    def position(self, topic: str, partition: int) -> int | None:
        with self._transaction() as cur:
            cur.execute(self._sql(
                "SELECT position FROM tracking WHERE projection = ? AND topic = ? AND partition = ?"
            ), (self.projection, topic, partition))
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def apply(self, cloud_event: CloudEvent, topic: str, partition: int, offset: int) -> Outcome:
        attrs = cloud_event.attributes
        with self._transaction() as cur:
            cur.execute(self._sql(
                "SELECT position FROM tracking WHERE projection = ? AND topic = ? AND partition = ?"
            ), (self.projection, topic, partition))
            row = cur.fetchone()
            if row is not None and int(row[0]) >= offset:
                return Outcome.SEEN_OFFSET
            cur.execute(self._sql(
                "INSERT INTO seen_events (source, id) VALUES (?, ?) ON CONFLICT DO NOTHING"
            ), (attrs.source, attrs.id))
            outcome = Outcome.APPLIED if cur.rowcount == 1 else Outcome.SEEN_EVENT
            if outcome is Outcome.APPLIED:
                cur.execute(self._sql(
                    "INSERT INTO event_counts (type, count) VALUES (?, 1) "
                    "ON CONFLICT (type) DO UPDATE SET count = event_counts.count + 1"
                ), (attrs.type,))
            cur.execute(self._sql(
                "INSERT INTO tracking (projection, topic, partition, position) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (projection, topic, partition) DO UPDATE SET position = excluded.position"
            ), (self.projection, topic, partition, offset))
        return outcome

    def event_counts(self) -> dict[str, int]:
        with self._transaction() as cur:
            cur.execute("SELECT type, count FROM event_counts ORDER BY type")
            return {type_: int(count) for type_, count in cur.fetchall()}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
