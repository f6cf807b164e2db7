"""Writers that meet in the store, on purpose: the first `n` recordings of an application
wait for each other and then write at once (the loser, if named, a moment later), so that
a test of concurrent commands is a real race on a real store, every time."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from eventsourcing.persistence import IntegrityError


def race(apps: Any, n: int = 2, *, loses: Callable[[Any], bool] | None = None,
         delay: float = 0.5, timeout: float = 20) -> dict[str, int]:
    """Makes the next `n` recordings of `apps` (one application, or several on one store as
    in several processes: their saves and the inbox's applied records) meet: each decided
    on what was there before any of them wrote. The one for which
    `loses(processing_event)` holds writes `delay` seconds after the others."""
    barrier, lock, calls = threading.Barrier(n), threading.Lock(), {"recorded": 0, "met": 0}

    def meeting_of(record: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def meeting(processing_event: Any) -> Any:
            with lock:
                calls["recorded"] += 1
                meets = calls["met"] < n
                calls["met"] += meets
            if meets:
                barrier.wait(timeout=timeout)
                if loses is not None and loses(processing_event):
                    time.sleep(delay)
            return record(processing_event)
        return meeting

    for app in apps if isinstance(apps, (list, tuple)) else [apps]:
        app._record = meeting_of(app._record)
    return calls


def always_conflicting(app: Any) -> dict[str, int]:
    """Every recording of `app` loses to another writer (as under a storm of writers)."""
    calls = {"recorded": 0}

    def lose(processing_event: Any) -> Any:
        calls["recorded"] += 1
        raise IntegrityError("UNIQUE constraint failed: stored_events.originator_id, "
                             "stored_events.originator_version")

    app._record = lose
    return calls


def kinds(processing_event: Any) -> list[str]:
    return [type(e).__qualname__ for e in processing_event.events]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(api: Any) -> Iterator[str]:
    """`api` served by uvicorn on a loopback port, in a thread: real HTTP."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def at_once(*calls: Any, timeout: float = 120) -> list[Any]:
    """Runs each call in its own thread; their results, or the exceptions they raised."""
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Any) -> None:
        try:
            results[i] = call()
        except Exception as error:  # noqa: BLE001 - the test looks at it
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
