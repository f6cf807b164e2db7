"""Once per store: the lease that lets one replica of a service at a time do the work that
must happen once -- the outbox relay, the timers, the assignment desk, the webhook sender,
the scheduler, publishing checkpoints.

On PostgreSQL the lease is a session advisory lock (`pg_try_advisory_lock` on a hash of
`tweespoor:<service>:<name>`), taken on a connection of the lease's own -- never one of
eventsourcing's pool, which hands connections to other threads and closes them after
`POSTGRES_CONN_MAX_AGE`. While it does not hold the lock it tries again every
`TWEESPOOR_LEASE_SECONDS` (1.0); while it holds it, it asks the server `SELECT 1` as often,
and when that fails or hangs (the backend terminated, the server restarted, the network
gone) it cancels the leased work at once and, after standing back two periods, goes back
to trying. A holder that dies
loses its session and so the lock: the server frees it as soon as the socket closes (a
SIGKILLed process on the same host: within milliseconds), and a standby takes it within
`TWEESPOOR_LEASE_SECONDS`. A holder that stops cleanly unlocks.

Correctness never hangs on the lease: every leased job tolerates a second one for a moment
(version conflicts, the relay's republish under the same CloudEvent ids), which is why
there is no fencing token. The lease is for "once", not for "never twice".

SQLite and in-memory stores serve one process (`contracts.storelock`): there the lease is
always held.

The holder is visible to operators: its connection's `application_name` is
`tweespoor-<service>-lease:<pid>` (`Lease.holder_of`, or `pg_locks` joined with
`pg_stat_activity`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 1.0

Job = Callable[[], Awaitable[None]]


def lease_seconds(env: Mapping[str, str] | None = None) -> float:
    """How often a lease is tried and kept alive: `TWEESPOOR_LEASE_SECONDS` (1.0)."""
    env = os.environ if env is None else env
    return float(env.get("TWEESPOOR_LEASE_SECONDS", DEFAULT_SECONDS))


def is_postgres(database_url: str) -> bool:
    return database_url.split(":", 1)[0] in ("postgresql", "postgres")


def lock_key(service: str, name: str) -> str:
    return f"tweespoor:{service}:{name}"


# The lock of one key in this database, and the session holding it: the 64-bit key is
# (classid << 32) | objid with objsubid 1 (PostgreSQL's documented layout for bigint keys).
_HOLDER = """
SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)
"""


class Lease:
    """One replica's claim on the once-per-store work of `service` (see the module)."""

    def __init__(self, database_url: str, *, service: str, name: str = "singleton",
                 every: float | None = None) -> None:
        self.database_url, self.service, self.name = database_url, service, name
        self.every = lease_seconds() if every is None else every
        self.key = lock_key(service, name)
        # Who holds it, as PostgreSQL's pg_stat_activity names the session.
        self.identity = f"tweespoor-{service}-lease:{os.getpid()}"
        self.shared = is_postgres(database_url)  # only there can another process compete
        self._held = False
        self._conn: Any = None
        self.acquired = 0  # how often this replica took the lease
        self.lost = 0  # how often it lost it while running

    @property
    def held(self) -> bool:
        """Whether this replica may do the once-per-store work now."""
        return self._held

    async def hold(self, jobs: Mapping[str, Job], *, on_loss: Callable[[], None] = lambda: None) -> None:
        """Runs `jobs` (name -> coroutine function) as tasks while the lease is held, until
        cancelled. When the lease is lost they are cancelled at once, `on_loss` is called
        and the lease is tried again; a job that raises (or ends) ends this too, with its
        error: a service whose once-per-store work died stops, loudly."""
        if not self.shared:
            self._held = True
            try:
                await self._run_while_held(jobs, keep_alive=False)
            finally:
                self._held = False
            return
        try:
            while True:
                await self._acquire()
                if await self._run_while_held(jobs, keep_alive=True):
                    return
                self.lost += 1
                log.warning("lease_lost", extra={"service": self.service, "lease": self.name,
                                                 "holder": self.identity, "action": "leased work cancelled"})
                with contextlib.suppress(Exception):
                    on_loss()
                # Its session broke, perhaps because this replica is the one in trouble:
                # it stands back two periods, so that a standby in good health takes over.
                await asyncio.sleep(2 * self.every)
        finally:
            await self._release()

    async def _run_while_held(self, jobs: Mapping[str, Job], *, keep_alive: bool) -> bool:
        """True when a job ended (its error raised), False when the lease was lost."""
        tasks = [asyncio.create_task(job(), name=name) for name, job in jobs.items()]
        try:
            while True:
                if tasks:
                    done, _ = await asyncio.wait(tasks, timeout=self.every if keep_alive else None,
                                                 return_when=asyncio.FIRST_COMPLETED)
                else:
                    done = set()
                    await asyncio.sleep(self.every if keep_alive else 3600.0)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                if done:
                    return True
                if keep_alive and not await self._alive():
                    return False
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect(self) -> Any:
        import psycopg

        return await asyncio.wait_for(psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, application_name=self.identity, connect_timeout=5,
            # a holder whose host vanished without a word is noticed by TCP keepalive
            keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3), timeout=10)

    async def _acquire(self) -> None:
        """Returns once this replica holds the lease; tries every `every` seconds."""
        import psycopg

        failing: str | None = None
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect()
                cursor = await asyncio.wait_for(self._conn.execute(
                    "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.key,)), timeout=10)
                row = await cursor.fetchone()
                if row is not None and row[0]:
                    self._held = True
                    self.acquired += 1
                    log.info("lease_acquired", extra={"service": self.service, "lease": self.name,
                                                      "holder": self.identity})
                    return
                failing = None
            except (psycopg.Error, OSError, TimeoutError) as error:
                if failing != type(error).__name__:  # said once per kind of trouble, not every second
                    failing = type(error).__name__
                    log.warning("lease_unavailable", extra={"service": self.service, "lease": self.name,
                                                            "error": failing})
                await self._close()
            await asyncio.sleep(self.every)

    async def _alive(self) -> bool:
        """Whether the session holding the lock still answers (within 2 x `every`, 1 s at least)."""
        import psycopg

        try:
            await asyncio.wait_for(self._conn.execute("SELECT 1"), timeout=max(2 * self.every, 1.0))
            return True
        except (psycopg.Error, OSError, TimeoutError, AttributeError):
            self._held = False
            await self._close()  # whatever the server still thinks, this session is done
            return False

    async def _release(self) -> None:
        """A clean stop: unlocks, so that a standby takes over within `every`."""
        if self._conn is not None and self._held:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.execute("SELECT pg_advisory_unlock_all()"), timeout=2)
                log.info("lease_released", extra={"service": self.service, "lease": self.name,
                                                  "holder": self.identity})
        self._held = False
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)

    @staticmethod
    def holder_of(database_url: str, service: str, name: str = "singleton") -> tuple[str, int] | None:
        """Who holds the lease of `service` on this PostgreSQL store: the holder's
        `application_name` (`tweespoor-<service>-lease:<pid>`) and its backend's pid."""
        import psycopg

        with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_HOLDER, (lock_key(service, name),)).fetchone()
        return (row[0], row[1]) if row else None
