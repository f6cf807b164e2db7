"""One process per SQLite store.

An SQLite file serves one service process: two would each run the relay, the timers and
the scheduler, and there is no server to hold a lease (`contracts.lease`) on. So a service
process takes an exclusive `flock` on `<store>.lock` beside the database (and writes its
pid there) before it starts anything; a second process on the same store is refused with
a message that names the store and the other process. Replicas run on PostgreSQL.

The kernel releases the lock when the process ends, however it ends: a killed service
never leaves a stale lock behind. The lock is taken by the service process only
(`Service.run`), not by the application: tests and `tweespoor-reporting rebuild` open the
same file in more than one application on purpose.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

# sysexits.h EX_CONFIG: the process cannot run as configured; a supervisor does not restart it.
EXIT_STORE_IN_USE = 78


class StoreInUse(RuntimeError):
    """Another process serves this SQLite store."""

    def __init__(self, service: str, path: str, pid: str) -> None:
        self.service, self.path, self.pid = service, path, pid
        super().__init__(
            f"{path} is the store of another {service} process (pid {pid}); an SQLite store serves "
            f"one process. Stop that process, give this one another store, or run replicas on "
            f"PostgreSQL ({service.upper()}_DATABASE_URL=postgresql://...).")


def sqlite_path(database_url: str) -> str | None:
    """The file of an `sqlite:///` store URL (None for any other store)."""
    if urlsplit(database_url).scheme != "sqlite":
        return None
    return unquote(database_url.removeprefix("sqlite:///"))


@contextlib.contextmanager
def exclusive(database_url: str, service: str) -> Iterator[Path | None]:
    """Holds `<store>.lock` while inside (yields its path; None for a store that is not an
    SQLite file); raises `StoreInUse` when another process holds it."""
    path = sqlite_path(database_url)
    if path is None:
        yield None
        return
    lock = Path(path + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StoreInUse(service, path, other) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield lock
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
