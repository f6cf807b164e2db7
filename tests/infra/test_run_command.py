"""`tweespoor run` (what `make run` calls) run twice on one data directory: the second run
resumes the same broker and topics, posts the demo again without a 409 crash, restarts a
service that dies, and nothing on the way out deletes the data.

The run here has a broker of its own in its data directory (no KAFKA_BOOTSTRAP_SERVERS),
as `make run` has; the smaller tests check the broker on a kept data directory, the
supervisor on a trivial child and the demo posting on a small local server.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.topics import INTAKE_EVENTS
from infra import discovery
from infra.kafka import port_open
from infra.run import SERVICES, Supervisor, demo_referrals, post_demo_referrals
from tests.infra.test_local_kafka import _consume, _create_topic, _produce
from tests.support.kafka_tools import read_all


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (httpx.HTTPError, OSError):
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} not met in {timeout:.0f} s")


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`: pid -> command line."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        if ppid == pid:
            found[int(proc.name)] = cmdline
    return found


# -- the local broker on a kept data directory -------------------------------------------


@pytest.mark.kafka
def test_a_broker_with_a_data_dir_comes_back_with_its_topics_and_records(tmp_path, monkeypatch):
    monkeypatch.delenv(discovery.KAFKA_ENV, raising=False)
    data = tmp_path / "kafka"
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    with discovery.kafka(data_dir=data) as first:
        assert first.kind == "local" and first.controller is not None
        assert first.controller.data_dir == data.resolve()
        asyncio.run(_create_topic(first.bootstrap_servers, topic))
        asyncio.run(_produce(first.bootstrap_servers, topic, b"kept"))
        pid = first.controller.pid
    assert not first.controller.running and pid not in children(os.getpid())
    assert (data / "cluster.id").is_file() and (data / "kraft-logs" / "meta.properties").is_file()
    cluster_id = (data / "cluster.id").read_text()

    # A new broker object, as a second `tweespoor run` makes: other ports, same data.
    with discovery.kafka(data_dir=data) as second:
        assert second.controller is not None and second.controller.pid != pid
        assert asyncio.run(_consume(second.bootstrap_servers, topic, 1)) == [b"kept"]
    assert data.is_dir() and (data / "cluster.id").read_text() == cluster_id  # formatted once


@pytest.mark.kafka
def test_the_broker_in_the_environment_is_used_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv(discovery.KAFKA_ENV, "127.0.0.1:1")
    with discovery.kafka(data_dir=tmp_path / "kafka") as endpoint:
        assert (endpoint.bootstrap_servers, endpoint.kind, endpoint.controller) == ("127.0.0.1:1", "env", None)
    assert not (tmp_path / "kafka").exists()


# -- the supervisor on a trivial child ------------------------------------------------------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
DELAY = re.compile(r"restarting in ([0-9.]+) s")


@pytest.fixture
def supervised(tmp_path) -> Iterator[Callable[..., tuple[Supervisor, list[str]]]]:
    made: list[Supervisor] = []

    def make(commands: dict[str, list[str]], **options: Any) -> tuple[Supervisor, list[str]]:
        lines: list[str] = []
        supervisor = Supervisor(commands, tmp_path / "logs", say=lines.append, **options)
        made.append(supervisor)
        supervisor.start()
        return supervisor, lines

    yield make
    for supervisor in made:
        supervisor.stop()


def _restarted(supervisor: Supervisor, name: str, old_pid: int) -> Callable[[], bool]:
    def check() -> bool:
        supervisor.poll()
        process = supervisor.processes[name]
        return process.pid != old_pid and process.poll() is None
    return check


def test_a_killed_child_is_restarted_with_a_new_pid_and_a_log_line(supervised, tmp_path):
    supervisor, lines = supervised({"sleeper": SLEEPER}, backoff=0.2, max_backoff=1.0)
    first = supervisor.processes["sleeper"].pid
    os.kill(first, signal.SIGKILL)
    until(_restarted(supervisor, "sleeper", first), timeout=10, what="restart")
    assert supervisor.restarts["sleeper"] == 1
    died = next(line for line in lines if "sleeper" in line and "exited" in line)
    assert "SIGKILL" in died and str(tmp_path / "logs" / "sleeper.log") in died, died
    assert DELAY.search(died) and DELAY.search(died)[1] == "0.2", died
    assert any(f"sleeper restarted (pid {supervisor.processes['sleeper'].pid}," in line for line in lines), lines


def test_the_backoff_doubles_up_to_its_maximum_while_the_child_keeps_dying(supervised):
    supervisor, lines = supervised({"crasher": [sys.executable, "-c", "raise SystemExit(3)"]},
                                   backoff=0.1, max_backoff=0.4)
    until(lambda: (supervisor.poll(), supervisor.restarts["crasher"] >= 5)[1], timeout=15, what="five restarts")
    delays = [float(DELAY.search(line)[1]) for line in lines if DELAY.search(line)]
    assert delays[:5] == [0.1, 0.2, 0.4, 0.4, 0.4], lines
    assert all("exit code 3" in line for line in lines if DELAY.search(line)), lines


def test_the_backoff_starts_again_after_the_child_stayed_up_a_while(supervised):
    supervisor, lines = supervised({"sleeper": SLEEPER}, backoff=0.1, max_backoff=10.0, stable_after=1.0)
    for _ in range(2):  # two quick deaths: 0.1 s, then 0.2 s
        pid = supervisor.processes["sleeper"].pid
        os.kill(pid, signal.SIGKILL)
        until(_restarted(supervisor, "sleeper", pid), timeout=10, what="restart")
    time.sleep(1.2)  # up longer than stable_after
    pid = supervisor.processes["sleeper"].pid
    os.kill(pid, signal.SIGKILL)
    until(_restarted(supervisor, "sleeper", pid), timeout=10, what="restart")
    assert [DELAY.search(line)[1] for line in lines if DELAY.search(line)] == ["0.1", "0.2", "0.1"], lines


def test_stop_terminates_then_kills_and_restarts_nothing(supervised):
    stubborn = [sys.executable, "-c",
                "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
    supervisor, lines = supervised({"sleeper": SLEEPER, "stubborn": stubborn})
    time.sleep(0.3)  # let the stubborn child install its handler
    pids = {name: p.pid for name, p in supervisor.processes.items()}
    started = time.monotonic()
    supervisor.stop(timeout=1.0)
    assert time.monotonic() - started < 5
    assert all(p.poll() is not None for p in supervisor.processes.values())
    assert supervisor.processes["sleeper"].returncode == -signal.SIGTERM
    assert supervisor.processes["stubborn"].returncode == -signal.SIGKILL
    supervisor.poll()  # stopped: a supervisor restarts nothing any more
    assert {name: p.pid for name, p in supervisor.processes.items()} == pids
    assert not any("restarting" in line for line in lines), lines


# -- the demo posting on a small local server -------------------------------------------------


class _Intake(http.server.BaseHTTPRequestHandler):
    """201 for a referral the first time, 409 (already open) for the same body after."""

    seen: dict[str, int]
    requests: list[tuple[str | None, str | None, dict[str, Any]]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.headers.get("Idempotency-Key"), self.headers.get("Authorization"), body))
        key = json.dumps(body, sort_keys=True)
        status = 409 if key in self.seen else 201
        self.seen[key] = self.seen.get(key, 0) + 1
        answer = json.dumps({"title": "Already referred"} if status == 409 else {"status": "referred"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def intake_stub() -> Iterator[tuple[str, type[_Intake]]]:
    handler = type("Handler", (_Intake,), {"seen": {}, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_demo_is_posted_with_a_stable_key_per_referral_and_a_409_is_fine(intake_stub):
    url, handler = intake_stub
    tokens = {f"{r['municipality']}-case-system": f"token-{r['municipality']}" for r in demo_referrals()}
    assert post_demo_referrals(url, tokens) == (len(demo_referrals()), 0)
    # A second run: new tokens, the same referrals and keys; the stub answers 409 to each.
    assert post_demo_referrals(url, {k: v + "-2" for k, v in tokens.items()}) == (0, len(demo_referrals()))
    first, second = handler.requests[:len(demo_referrals())], handler.requests[len(demo_referrals()):]
    keys = [key for key, _, _ in first]
    assert all(keys) and len(set(keys)) == len(keys) == len(demo_referrals())
    assert [key for key, _, _ in second] == keys
    assert [body for _, _, body in first] == demo_referrals()
    assert all(auth == f"Bearer token-{body['municipality']}" for _, auth, body in first)


def test_another_error_from_intake_still_fails_the_demo(intake_stub, monkeypatch):
    url, handler = intake_stub

    def refuse(self: _Intake) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(422)
        self.send_header("Content-Length", "0")
        self.end_headers()

    monkeypatch.setattr(handler, "do_POST", refuse)
    tokens = {f"{r['municipality']}-case-system": "t" for r in demo_referrals()}
    with pytest.raises(httpx.HTTPStatusError):
        post_demo_referrals(url, tokens)


# -- `tweespoor run` twice, end to end ---------------------------------------------------------


class Run:
    """One `tweespoor run` process on a data directory, its output in a file."""

    def __init__(self, data_dir: Path, ports: dict[str, int], output: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in (discovery.KAFKA_ENV, discovery.POSTGRES_ENV)}
        env.update({f"{n.upper()}_PORT": str(p) for n, p in ports.items()})
        self.output, self.offset = output, output.stat().st_size if output.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "run", "--data-dir", str(data_dir)],
            env=env, stdout=output.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output.read_bytes()[self.offset:].decode(errors="replace")

    def wait_ready(self) -> None:
        until(lambda: self.process.poll() is not None or "Press Ctrl-C to stop." in self.text(),
              timeout=150, what="the run to be up")
        assert self.process.poll() is None, self.text()[-4000:]

    def bootstrap(self) -> str:
        match = re.search(r"^Kafka: (\S+) \(local, data in ", self.text(), re.MULTILINE)
        assert match, self.text()[-4000:]
        return match[1]

    def interrupt(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def _service_pid(run: Run, name: str) -> int:
    return next(pid for pid, cmd in children(run.process.pid).items() if f"{name}.main" in cmd)


@pytest.mark.kafka
def test_a_second_run_resumes_the_same_broker_posts_the_demo_again_and_restarts_a_dead_service(tmp_path):
    data_dir, output = tmp_path / "run", tmp_path / "run.out"
    ports = {name: free_port() for name in SERVICES}
    intake = f"http://127.0.0.1:{ports['intake']}"

    first = Run(data_dir, ports, output)
    try:
        first.wait_ready()
        assert f"Demo: {len(demo_referrals())} referrals" in first.text()
        # The demo's installation clock: in the tender's period, kept in the data directory.
        first_day = re.search(r"^  today +(\d{4}-\d\d-\d\d) \(simulated", first.text(), re.MULTILINE)
        assert first_day and "2008-02-01" <= first_day[1] <= "2008-02-29", first.text()[-4000:]
        assert (data_dir / "clock.json").is_file()
        bootstrap = first.bootstrap()
        until(lambda: len(asyncio.run(read_all(bootstrap, INTAKE_EVENTS))) >= len(demo_referrals()),
              timeout=60, what="the demo's events on the intake topic")
        referred = asyncio.run(read_all(bootstrap, INTAKE_EVENTS))
    finally:
        assert first.interrupt() == 0, first.text()[-4000:]
    assert "Stopped." in first.text()
    assert not port_open(int(bootstrap.rsplit(":", 1)[1]))
    assert (data_dir / "kafka" / "kraft-logs" / "meta.properties").is_file()  # kept, not deleted

    second = Run(data_dir, ports, output)
    try:
        second.wait_ready()  # before the fix: intake answered 409 to the demo and the run died
        assert f"Demo: {len(demo_referrals())} referrals" in second.text()
        second_day = re.search(r"^  today +(\d{4}-\d\d-\d\d) \(simulated", second.text(), re.MULTILINE)
        assert second_day and first_day[1] <= second_day[1] <= "2008-03-31"  # continued, not restarted
        again = asyncio.run(read_all(second.bootstrap(), INTAKE_EVENTS))
        # The same topic with the same records: the demo added no second referral.
        assert [(r.offset, r.value) for r in again] == [(r.offset, r.value) for r in referred]

        # A service killed under the run is restarted, with a line saying so.
        pid = _service_pid(second, "intake")
        os.kill(pid, signal.SIGKILL)
        until(lambda: "intake exited" in second.text() and "intake restarted" in second.text(),
              timeout=30, what="intake's restart")
        until(lambda: httpx.get(f"{intake}/health", timeout=1).status_code == 200, timeout=60,
              what="the restarted intake to be healthy")
        assert _service_pid(second, "intake") != pid and second.process.poll() is None
    finally:
        assert second.interrupt() == 0, second.text()[-4000:]
    assert "Stopped." in second.text()
    assert not any(port_open(p) for p in ports.values())  # every service stopped
    assert not port_open(int(second.bootstrap().rsplit(":", 1)[1]))  # and the broker
    assert (data_dir / "kafka" / "kraft-logs" / "meta.properties").is_file()
    logs = "".join((data_dir / "logs" / f"{n}.log").read_text(errors="replace") for n in SERVICES)
    assert "topic_incarnation_new" not in logs  # the services met no new topic incarnation
