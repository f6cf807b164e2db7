"""One process per SQLite store: a second service process on the same file is refused
with a message naming the store, the other process and what to do instead, and exits
with code 78, which `tweespoor run`'s supervisor does not restart; the lock goes with
the process that held it (issue 17, item 4)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import storelock
from contracts.runtime import Settings
from infra.demo import write_credentials
from infra.run import Supervisor
from tests.support.kafka_tools import eventually
from tests.trajectory.receiver import free_port

REPO = Path(__file__).resolve().parents[2]


def test_a_second_holder_of_one_store_is_refused_with_the_store_the_pid_and_what_to_do(tmp_path):
    url = f"sqlite:///{tmp_path}/intake.db"
    with storelock.exclusive(url, "intake") as lock:
        assert lock == Path(f"{tmp_path}/intake.db.lock")
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(storelock.StoreInUse) as refused, storelock.exclusive(url, "intake"):
            pass
    message = str(refused.value)
    assert f"{tmp_path}/intake.db" in message and f"pid {os.getpid()}" in message
    assert "PostgreSQL" in message and "INTAKE_DATABASE_URL" in message
    with storelock.exclusive(url, "intake"):  # released: the next process may
        pass
    with storelock.exclusive("memory:", "intake") as none, storelock.exclusive("memory:", "intake"):
        assert none is None


def _intake_env(tmp_path: Path, url: str) -> dict[str, str]:
    credentials, _ = write_credentials(tmp_path / "config")
    return {**os.environ, "INTAKE_DATABASE_URL": url, "INTAKE_PORT": str(free_port()),
            "TWEESPOOR_CREDENTIALS_FILE": str(credentials), "TWEESPOOR_DATA_DIR": str(tmp_path),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}  # refused before it would reach a broker


def test_a_second_intake_process_on_one_sqlite_store_exits_with_78_and_says_why(tmp_path):
    url = f"sqlite:///{tmp_path}/intake.db"
    with storelock.exclusive(url, "intake"):  # this process serves the store
        second = subprocess.run([sys.executable, "-m", "intake.main"], cwd=REPO, env=_intake_env(tmp_path, url),
                                capture_output=True, timeout=120)
    assert second.returncode == storelock.EXIT_STORE_IN_USE, second.stderr.decode()[-2000:]
    said = second.stderr.decode()
    assert "store_in_use" in said and f"{tmp_path}/intake.db" in said and f"pid {os.getpid()}" in said


def test_the_supervisor_does_not_restart_a_process_that_refused_to_run(tmp_path):
    lines: list[str] = []
    supervisor = Supervisor({"intake": [sys.executable, "-c", "raise SystemExit(78)"]}, tmp_path / "logs",
                            backoff=0.05, say=lines.append)
    supervisor.start()
    try:
        first = supervisor.processes["intake"]
        first.wait(timeout=30)
        for _ in range(10):
            supervisor.poll()
    finally:
        supervisor.stop()
    assert supervisor.refused == {"intake"} and supervisor.restarts["intake"] == 0
    assert supervisor.processes["intake"] is first
    assert any("refused to start" in line and "not restarting" in line for line in lines), lines


@pytest.mark.kafka
async def test_a_second_service_run_on_a_running_services_sqlite_store_is_refused(bootstrap, tmp_path):
    from intake.main import build

    credentials, _ = write_credentials(tmp_path / "config")
    url = f"sqlite:///{tmp_path}/intake.db"
    env = {"TWEESPOOR_CREDENTIALS_FILE": str(credentials), "INTAKE_CHECKPOINT_KEY": "A" * 43 + "="}

    def replica() -> object:
        service = build(Settings("intake", bootstrap, url, "127.0.0.1", 0), env)
        service.consumes_from, service.publishes_to = (), None  # its own store only: no shared topics
        return service

    first, second = replica(), replica()
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))  # type: ignore[attr-defined]
    try:
        await eventually(lambda: running.done() or (first.lease is not None and first.lease.held), timeout=60)
        assert not running.done()
        with pytest.raises(storelock.StoreInUse, match=f"pid {os.getpid()}"):
            await second.run(asyncio.Event())  # type: ignore[attr-defined]
        assert not running.done()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 30)
        second.app.close()  # type: ignore[attr-defined]
