"""The processing log, in the spirit of the Dutch Logboek Dataverwerkingen (LDV) standard.

One record per processing operation (an HTTP request that reached a route, one Kafka
record applied or dead-lettered): its trace and span ids and the span that caused it, the
processing activity (which service did what), the status, and the data subject only by a
pseudonymous id (a trajectory, plan, referral or offer id) — never a BSN, a name or who
the user was. Who looked at what is the access log's business, kept apart (in reporting);
the two meet on the trace id.

Each service keeps its own log beside its store: an SQLite store gets a separate file
(`<store>-processing.db`, so logging never waits on the store's write lock), PostgreSQL a
`processing_log` table in the service's database, `memory:` a list.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

COLUMNS = ("trace_id", "span_id", "parent_span_id", "activity_id", "service", "status",
           "subject_type", "subject_id", "started_at", "ended_at")


@dataclass(frozen=True)
class Record:
    """One processing operation. The fields follow LDV: trace, span, parent span,
    processing activity, status, pseudonymised data subject; no user identity."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    activity_id: str
    service: str
    status: Literal["ok", "error"]
    subject_type: str | None
    subject_id: str | None
    started_at: str
    ended_at: str


class ProcessingLog:
    """Where one service writes its processing records; safe to use from worker threads."""

    def __init__(self, database_url: str) -> None:
        self._lock = threading.Lock()
        self._memory: list[dict[str, Any]] | None = None
        self._postgres = database_url.startswith(("postgresql://", "postgres://"))
        if database_url == "memory:":
            self._memory = []
            return
        if self._postgres:
            import psycopg

            self._url = database_url
            self._conn: Any = psycopg.connect(database_url, autocommit=True)
        elif database_url.startswith("sqlite:///"):
            store = Path(unquote(database_url.removeprefix("sqlite:///")))
            store.parent.mkdir(parents=True, exist_ok=True)
            path = store.with_name(f"{store.stem}-processing.db")
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
        else:
            raise ValueError("the processing log needs an sqlite:///, postgresql:// or memory: URL")
        columns = ", ".join(f"{c} TEXT" + (" NOT NULL" if c in ("trace_id", "span_id", "activity_id")
                                           else "") for c in COLUMNS)
        with self._lock:
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS processing_log ({columns})")
            self._conn.execute("CREATE INDEX IF NOT EXISTS processing_log_trace ON processing_log (trace_id)")

    def record(self, record: Record) -> None:
        row = asdict(record)
        if self._memory is not None:
            with self._lock:
                self._memory.append(row)
            return
        p = "%s" if self._postgres else "?"
        with self._lock:
            self._reopen_if_closed()
            self._conn.execute(f"INSERT INTO processing_log ({', '.join(COLUMNS)}) "
                               f"VALUES ({', '.join([p] * len(COLUMNS))})", tuple(row[c] for c in COLUMNS))

    def records(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """The records of one trace (or all), in the order they were written."""
        if self._memory is not None:
            with self._lock:
                return [dict(r) for r in self._memory if trace_id in (None, r["trace_id"])]
        p = "%s" if self._postgres else "?"
        query = f"SELECT {', '.join(COLUMNS)} FROM processing_log"
        with self._lock:
            self._reopen_if_closed()
            cursor = (self._conn.execute(f"{query} WHERE trace_id = {p} ORDER BY started_at", (trace_id,))
                      if trace_id else self._conn.execute(f"{query} ORDER BY started_at"))
            return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def _reopen_if_closed(self) -> None:
        # After a PostgreSQL restart the old connection stays closed for good; without a
        # new one every later record would be lost.
        if self._postgres and self._conn.closed:
            import psycopg

            self._conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)

    def close(self) -> None:
        if self._memory is None:
            self._conn.close()
