"""Helpers of the crash test: service processes that can be SIGKILLed and started again,
a driver that posts referrals until each one is acknowledged, and a chaos schedule drawn
from a seed.

Nothing here knows of a particular machine: every port is free when taken, every file is
under the test's own temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.municipalities import MUNICIPALITIES
from tests.support.people import made_up_bsns

NAME = "Chaos Deelnemer"  # the privacy scan looks for this in every topic and log file

# Each case: programme, benefit, distance to the labour market, registered at UWV, and
# whether it is eligible (None: only where Focus2Move runs, which is Alkmaar by default).
CASES: tuple[tuple[str, str, str, bool, bool | None], ...] = (
    ("social-activation", "bijstand", "large", False, True),
    ("social-activation", "wao", "very-large", False, True),
    ("social-activation", "bijstand-wao", "large", True, True),
    ("social-activation", "bijstand", "small", False, False),  # distance too small
    ("social-activation", "none", "very-large", False, False),  # no bijstand or WAO
    ("reintegration", "none", "unknown", True, True),  # a Nugger registered at UWV
    ("reintegration", "anw", "small", True, True),
    ("reintegration", "anw", "large", False, False),  # not registered at UWV
    ("reintegration", "bijstand", "small", True, False),  # not a Nugger or ANW
    ("focus2move", "bijstand", "large", False, None),
    ("focus2move", "wao", "large", False, False),  # not on bijstand
)
FOCUS2MOVE = {"alkmaar"}


# -- made-up people ------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One referral the driver posts, and what intake must decide on it."""

    index: int
    municipality: str
    body: dict[str, Any] = field(repr=False)
    eligible: bool


def plan_referrals(count: int, rng: random.Random) -> list[Planned]:
    """`count` referrals spread over the five municipalities, eligible and not."""
    today = dt.date.today()
    planned = []
    for index, bsn in enumerate(made_up_bsns(count, rng)):
        municipality = MUNICIPALITIES[index % len(MUNICIPALITIES)]
        programme, benefit, distance, registered, eligible = rng.choice(CASES)
        referred_on = today - dt.timedelta(days=rng.randrange(0, 60))
        body = {
            "bsn": bsn, "name": f"{NAME} {index + 1}", "date_of_birth": "1979-04-12",
            "municipality": municipality, "programme": programme, "benefit": benefit,
            "uwv_registered_on": (referred_on - dt.timedelta(days=90)).isoformat() if registered else None,
            "distance_to_labour_market": distance, "referred_on": referred_on.isoformat(),
            "caseworker_id": f"chaos-{index % 17}",
        }
        planned.append(Planned(index, municipality, body,
                               eligible if eligible is not None else municipality in FOCUS2MOVE))
    return planned


# -- service processes ---------------------------------------------------------------------


class ServiceProcess:
    """One service as its own process (`python -m <name>.main`), in its own session so a
    SIGKILL reaches all of it; output appended to one log file across restarts."""

    def __init__(self, name: str, env: dict[str, str], port: int, log_file: Path, cwd: Path) -> None:
        self.name, self.env, self.port, self.log_file, self.cwd = name, env, port, log_file, cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.unexpected_exits: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} runs already"
        with self.log_file.open("ab") as log:
            log.write(f"\n=== chaos: start #{self.starts + 1} of {self.name} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", f"{self.name}.main"], env=self.env,
                                         cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as a crash would: no handler runs, nothing is flushed or closed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.kills += 1
        self.proc.wait()
        self.proc = None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL when it takes longer than `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def exited_unexpectedly(self) -> bool:
        """True (once) when the process died without being asked to."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits.append(self.proc.returncode)
            self.proc = None
            return True
        return False

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exited_unexpectedly():
                self.start()  # e.g. started while its store was still coming back: again
            elif self.healthy():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy within {timeout:.0f} s; see {self.log_file.name}:\n"
                           + tail(self.log_file))


def stop_all(services: Sequence[ServiceProcess], timeout: float = 10.0) -> None:
    """SIGTERM to every service at once, SIGKILL to what still runs after `timeout`."""
    for service in services:
        if service.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    for service in services:
        if service.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(max(0.1, deadline - time.monotonic()))
            service.kill()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no {path.name})"


# -- the driver ----------------------------------------------------------------------------


class Driver:
    """Posts every planned referral to intake with an Idempotency-Key of its own, retrying
    on connection errors and 5xx until it gets its 201: an acknowledged referral is one
    intake has stored, and a retry of the same key can only get the first answer again.

    The posts are spread over at least `duration` seconds so that the chaos meets a
    steady flow, not a burst followed by silence; and none is posted at or beyond
    `allowed`, which the chaos sets a little past its next fault, so that every fault
    meets the flow at about its planned share of it however slowly services restart."""

    def __init__(self, url: str, tokens: dict[str, str], planned: Sequence[Planned], *,
                 key_prefix: str, workers: int = 4, duration: float = 60.0,
                 deadline: float = 300.0) -> None:
        self.url, self.tokens, self.planned = url, tokens, list(planned)
        self.key_prefix, self.workers, self.duration = key_prefix, workers, duration
        self.deadline = deadline
        self.acknowledged: dict[int, dict[str, Any]] = {}
        self.refused: dict[int, str] = {}  # a 4xx other than what a retry may give
        self.retries = 0
        self.statuses: dict[str, int] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at = 0.0
        self.allowed = len(self.planned)

    @property
    def done(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def answered(self) -> int:
        """Referrals acknowledged or refused for good: what no retry will change."""
        with self._lock:
            return len(self.acknowledged) + len(self.refused)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._threads = [threading.Thread(target=self._work, name=f"driver-{i}", daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _take(self) -> Planned | None:
        with self._lock:
            if self._next >= len(self.planned):
                return None
            self._next += 1
            return self.planned[self._next - 1]

    def _count(self, what: str) -> None:
        with self._lock:
            self.statuses[what] = self.statuses.get(what, 0) + 1

    def _work(self) -> None:
        pace = self.duration / max(len(self.planned), 1)
        with httpx.Client(timeout=httpx.Timeout(20.0, connect=3.0)) as client:
            while not self._stop.is_set() and (item := self._take()) is not None:
                while item.index >= self.allowed and not self._stop.wait(0.05):
                    pass
                wait = self.started_at + item.index * pace - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                self._post(client, item)

    def _post(self, client: httpx.Client, item: Planned) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[f'{item.municipality}-case-system']}",
                   "Idempotency-Key": f"{self.key_prefix}-{item.index}"}
        delay = 0.1
        while not self._stop.is_set():
            if time.monotonic() - self.started_at > self.deadline:
                with self._lock:
                    self.refused[item.index] = "not acknowledged before the driver's deadline"
                return
            try:
                response = client.post(f"{self.url}/referrals", json=item.body, headers=headers)
            except httpx.TransportError as error:
                self._count(type(error).__name__)
            else:
                self._count(str(response.status_code))
                if response.status_code == 201:
                    with self._lock:
                        self.acknowledged[item.index] = response.json()
                    return
                if response.status_code < 500:
                    with self._lock:  # no retry can change this answer: the test fails on it
                        self.refused[item.index] = f"{response.status_code} {response.text[:300]}"
                    return
            with self._lock:
                self.retries += 1
            self._stop.wait(delay)
            delay = min(delay * 2, 2.0)


# -- the chaos schedule --------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One fault: at `at` (the share of referrals acknowledged), after `jitter` seconds,
    `kind` ("kill" a service, restart "kafka" or "postgres") on `target`, down `down` s."""

    at: float
    jitter: float
    kind: str
    target: str
    down: float
    mode: str = "kill"  # for kafka and postgres: "kill" (SIGKILL) or "stop" (clean)

    def __str__(self) -> str:
        what = f"{self.mode} {self.target}" if self.kind != "kill" else f"SIGKILL {self.target}"
        return f"at {self.at:5.1%} (+{self.jitter:.2f} s): {what}, down {self.down:.1f} s"


def chaos_schedule(rng: random.Random, services: Sequence[str], kills_per_service: int = 3) -> list[Action]:
    """Several SIGKILLs of every service, one broker restart and one PostgreSQL restart,
    at random moments of the run (as shares of the referrals acknowledged)."""
    actions = [Action(rng.uniform(0.03, 0.97), rng.uniform(0, 0.8), "kill", name, rng.uniform(0.2, 2.5))
               for name in services for _ in range(kills_per_service)]
    actions.append(Action(rng.uniform(0.15, 0.85), rng.uniform(0, 0.8), "kafka", "kafka",
                          rng.uniform(1.0, 4.0), rng.choice(["kill", "stop"])))
    actions.append(Action(rng.uniform(0.15, 0.85), rng.uniform(0, 0.8), "postgres", "postgres",
                          rng.uniform(1.0, 4.0), rng.choice(["kill", "stop"])))
    return sorted(actions, key=lambda a: a.at)


# -- looking at Kafka and at the stores ----------------------------------------------------


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of `topics`, without joining a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


def sync_end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[tuple[str, int], int]:
    return asyncio.run(end_offsets(bootstrap, topics))


async def read_event_topics(bootstrap: str, topics: Sequence[str]) -> tuple[int, int, list[tuple[str, str]]]:
    """(records, distinct CloudEvents by source and id, (where, text) of every value and
    header) on `topics`."""
    from tests.support.kafka_tools import read_all

    records, seen, texts = 0, set(), []
    for topic in topics:
        for record in await read_all(bootstrap, topic, timeout=60):
            headers = dict(record.headers or ())
            records += 1
            seen.add((headers.get("ce_source"), headers.get("ce_id")))
            where = f"{topic}@{record.partition}/{record.offset}"
            texts.append((where, (record.value or b"").decode(errors="replace")))
            texts.extend((f"{where} {k}", v.decode(errors="replace")) for k, v in headers.items())
    return records, len(seen), texts


OUTBOX = "outbox"  # the tracking name of a relay's position (contracts.outbox.POSITION)


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5)


def relay_backlog(url: str, application: str) -> tuple[int, int]:
    """(the relay's published position, the newest notification) in a service's store
    (eventsourcing keeps `<application>_events` and `<application>_tracking` on PostgreSQL)."""
    with _connect(url) as conn:
        newest = conn.execute(f"SELECT COALESCE(MAX(notification_id), 0) FROM {application}_events").fetchone()[0]
        row = conn.execute(f"SELECT notification_id FROM {application}_tracking WHERE application_name = %s",
                           (OUTBOX,)).fetchone()
    return (int(row[0]) if row else 0), int(newest)


def reporting_positions(url: str) -> dict[tuple[str, int], int]:
    """The last offset reporting's live read models applied, per topic-partition."""
    with _connect(url) as conn:
        live = conn.execute("SELECT value FROM reporting_control WHERE name = 'live'").fetchone()[0]
        rows = conn.execute(f"SELECT topic, partition, position FROM g{int(live)}_tracking").fetchall()
    return {(topic, int(partition)): int(position) for topic, partition, position in rows}


def reporting_doc_ids(url: str) -> set[uuid.UUID]:
    with _connect(url) as conn:
        live = conn.execute("SELECT value FROM reporting_control WHERE name = 'live'").fetchone()[0]
        rows = conn.execute(f"SELECT id FROM g{int(live)}_docs WHERE kind = 'trajectory'").fetchall()
    return {uuid.UUID(row[0]) for row in rows}


def first_events(url: str, application: str, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Which of `ids` are aggregates in a service's store, with the topic of each one's
    first event."""
    with _connect(url) as conn:
        rows = conn.execute(f"SELECT originator_id, topic FROM {application}_events "
                            "WHERE originator_version = 1 AND originator_id = ANY(%s)",
                            (list(ids),)).fetchall()
    return {row[0]: row[1] for row in rows}


# -- the chaos -----------------------------------------------------------------------------


@dataclass
class Recovery:
    """What each service still owes after the broker or the store came back: a relay its
    backlog of that moment (the newest notification in its store), reporting the records
    that were on the topics then."""

    after: str
    deadline: float
    began: float
    marks: dict[str, int]
    ends: dict[tuple[str, int], int]
    waiting: dict[str, str] = field(default_factory=dict)
    checked: float = 0.0


class Chaos:
    """Carries out a schedule while the driver runs. A killed service is started again
    after its down time, in the background: the next fault need not wait for it, and
    the next kill of the same service may find it still starting. The broker and
    PostgreSQL are restarted only while every service runs and answers, and after each
    of those restarts every service must recover by itself within `recovery` seconds (a
    service is not killed before it has, so that a kill cannot hide that it did not)."""

    PUBLISHERS = ("intake", "trajectory", "coaching")

    def __init__(self, *, services: dict[str, ServiceProcess], broker: Any, postgres: Any,
                 urls: dict[str, str], topics: Sequence[str], driver: Driver,
                 recovery: float = 90.0) -> None:
        self.services, self.broker, self.postgres, self.urls = services, broker, postgres, urls
        self.topics, self.driver, self.recovery = topics, driver, recovery
        self.started = time.monotonic()
        self.timeline: list[str] = []
        self.failures: list[str] = []  # what did not recover by itself
        self._due: dict[str, float] = {}  # killed service -> when to start it again
        self._starting: set[str] = set()
        self._recovery: Recovery | None = None

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f} s, {self.driver.count():4d} acknowledged: {text}"
        self.timeline.append(line)
        print("  " + line, flush=True)

    # the background work, done whenever the chaos waits ---------------------------------

    def tick(self) -> None:
        for service in self.services.values():
            if service.exited_unexpectedly():
                self.note(f"{service.name} exited by itself (code {service.unexpected_exits[-1]}); "
                          "starting it again")
                service.start()
                self._starting.add(service.name)
        now = time.monotonic()
        for name, when in list(self._due.items()):
            if now >= when:
                del self._due[name]
                self.services[name].start()
                self._starting.add(name)
        for name in list(self._starting):
            if self.services[name].healthy():
                self._starting.discard(name)
                self.note(f"{name} healthy again")
        self._watch_recovery()

    def wait(self, until: Callable[[], bool], what: str, timeout: float = 180.0) -> bool:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                self.note(f"gave up waiting for {what} after {timeout:.0f} s")
                return False
            self.tick()
            time.sleep(0.1)
        return True

    def all_running(self) -> bool:
        return not self._due and not self._starting and all(s.running for s in self.services.values())

    def recovering(self, name: str | None = None) -> bool:
        """Whether a service (any, when None) still owes its recovery."""
        if self._recovery is None:
            return False
        return name is None or any(key.split()[0] == name for key in self._recovery.waiting)

    # the schedule -------------------------------------------------------------------------

    def run(self, schedule: Sequence[Action], ahead: float = 0.05) -> None:
        """Carries out `schedule`, letting the driver run at most `ahead` (a share of the
        referrals) past the next fault."""
        total = len(self.driver.planned)

        def allow_up_to(action: Action | None) -> None:
            self.driver.allowed = total if action is None else \
                min(total, math.ceil(action.at * total) + max(1, int(ahead * total)))

        allow_up_to(schedule[0] if schedule else None)
        for index, action in enumerate(schedule):
            self.wait(lambda a=action: self.driver.answered() >= a.at * total or self.driver.done,
                      f"{action.at:.0%} acknowledged", timeout=600)
            # The flow goes on while this fault lasts (intake takes referrals into its
            # outbox while the broker is away), up to a little past the next one.
            allow_up_to(schedule[index + 1] if index + 1 < len(schedule) else None)
            deadline = time.monotonic() + action.jitter
            self.wait(lambda d=deadline: time.monotonic() >= d, "the jitter")
            if action.kind == "kill":
                self.kill(action)
            else:
                self.restart(action)
        self.wait(lambda: self.all_running() and not self.recovering(), "every service to run again",
                  timeout=self.recovery + 60)
        self.wait(lambda: self.driver.done, "the driver", timeout=600)

    def kill(self, action: Action) -> None:
        name = action.target
        # A service still starting may be killed again (a crash during recovery is a crash
        # too); one whose recovery after a broker or store restart is being checked may not.
        self.wait(lambda: name not in self._due and not self.recovering(name),
                  f"{name} to run again", timeout=self.recovery + 60)
        self.services[name].kill()
        self.note(f"SIGKILL {name}")
        self._due[name] = time.monotonic() + action.down

    def restart(self, action: Action) -> None:
        self.wait(lambda: self.all_running() and not self.recovering(), "every service to run before a restart",
                  timeout=self.recovery + 60)
        server = self.broker if action.kind == "kafka" else self.postgres
        label = "the Kafka broker" if action.kind == "kafka" else "PostgreSQL"
        server.kill() if action.mode == "kill" else server.stop()
        self.note(f"{label} {'SIGKILLed' if action.mode == 'kill' else 'stopped'}")
        time.sleep(action.down)
        server.start()
        self.note(f"{label} started again on the same data and port(s)")
        marks: dict[str, int] = {}
        ends: dict[tuple[str, int], int] = {}

        def marked() -> bool:  # what was waiting at the moment it came back
            try:
                marks.update({app: relay_backlog(self.urls[app], app)[1] for app in self.PUBLISHERS})
                ends.update(sync_end_offsets(self.broker.bootstrap_servers, self.topics))
            except Exception:  # noqa: BLE001 - the server only just answers
                return False
            return True

        self.wait(marked, f"the stores and topics after restarting {label}", timeout=60)
        now = time.monotonic()
        self._recovery = Recovery(label, now + self.recovery, now, marks, ends,
                                  waiting={f"{name} (not checked yet)": "" for name in self.services})

    def _watch_recovery(self) -> None:
        r = self._recovery
        if r is None or time.monotonic() - r.checked < 1.0:
            return
        r.checked = time.monotonic()
        try:
            waiting = {}
            for app, mark in r.marks.items():
                position = relay_backlog(self.urls[app], app)[0]
                if position < mark:
                    waiting[f"{app} relay"] = f"published up to notification {position} of {mark}"
            positions = reporting_positions(self.urls["reporting"])
            behind = sum(end - 1 - positions.get(tp, -1) for tp, end in r.ends.items()
                         if end and positions.get(tp, -1) < end - 1)
            if behind:
                waiting["reporting inbox"] = f"{behind} records on the topics not applied"
            r.waiting = waiting
        except psycopg.Error as error:
            r.waiting.setdefault("(the test's own look at the stores)", type(error).__name__)
        if not r.waiting:
            self.note(f"every relay and reporting caught up {r.checked - r.began:.1f} s after {r.after} came back")
            self._recovery = None
        elif r.checked > r.deadline:
            failure = f"not recovered {self.recovery:.0f} s after restarting {r.after}: {r.waiting}"
            self.failures.append(failure)
            self.note(failure)
            self._recovery = None
