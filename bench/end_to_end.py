"""Stage d, end to end and memory: provider webhooks into the trajectory service, through
Kafka to coaching and reporting, with the peak RSS of each service process.

1. The four services run as `tweespoor run` runs them (a process each, SQLite stores in a
   directory of this run, this run's broker), with fresh demo credentials and the bench's
   tender (`bench/tender.toml`: one provider with places for everyone, dates around today).
2. Trajectories are opened through intake (`POST /referrals`) and wait until the desk has
   assigned them to that provider, who agrees a plan in each.
3. Sustained rate: signed reports (Standard Webhooks, `contracts.webhooks.sign`) of failed
   mediation attempts are posted to `POST /providers/{p}/trajectories/{id}/reports` by
   concurrent clients, each as soon as the last was acknowledged, for a fixed time; the
   rate counts them until reporting's read model shows the last one, so a pipeline that
   acknowledges faster than it delivers is not credited for it.
4. Latency: the same reports at half that rate, on a fixed schedule (open loop), each timed
   from its 202 until reporting's read model shows it (p50, p99). Then every trajectory is
   placed in a job at half rate too, timed until coaching has started its plan.
5. Memory: each service's peak RSS (VmHWM in /proc/<pid>/status) at the end.

Reporting has no API for one trajectory's document but the auditor's (which reads Kafka),
so "showing it" is read where the API reads it: reporting's own store, opened read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.report import Figure
from contracts.events import MediationAttemptFailed
from contracts.kafka import ensure_topics
from contracts.webhooks import sign
from infra.demo import write_credentials
from infra.run import SERVICES, _services, _wait_healthy, demo_bsns

STAGE = "d. end to end"
TENDER = Path(__file__).with_name("tender.toml")
PROVIDER, DISCIPLINE, MUNICIPALITY = "agens", "Diagnose", "alkmaar"  # as bench/tender.toml has them
FAILED = MediationAttemptFailed.type
TARGET_RATIO, TARGET_P99_MS, TARGET_RSS_MB = 0.35, 250.0, 200.0
IDLE_SECONDS = 5.0
POLL_SECONDS = 0.005  # how often the read model is looked at: the latencies' resolution


@dataclass
class Pipeline:
    """The running services, as the benchmark talks to them."""

    urls: dict[str, str]
    pids: dict[str, int]
    tokens: dict[str, str]
    secret: str
    reporting_db: Path
    client: httpx.AsyncClient
    today: dt.date = field(default_factory=dt.date.today)

    def auth(self, credential: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[credential]}"}

    async def report(self, trajectory_id: str, body: dict[str, Any]) -> float:
        """Posts one signed report; returns the moment its 202 arrived."""
        content = json.dumps(body).encode()
        response = await self.client.post(
            f"{self.urls['trajectory']}/providers/{PROVIDER}/trajectories/{trajectory_id}/reports",
            content=content, headers=sign(self.secret, content))
        acked = time.perf_counter()
        if response.status_code != 202:
            raise RuntimeError(f"report {body['type']} answered {response.status_code}: {response.text[:300]}")
        return acked

    def failed_mediation(self) -> dict[str, Any]:
        return {"type": "mediation-failed", "discipline": DISCIPLINE, "attempted_on": self.today.isoformat(),
                "reason": "not-hired"}


class ReadModel:
    """Reporting's store, read-only: how many events of a type each trajectory's document
    holds, asked for the trajectories still awaited only."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def counts(self, trajectory_ids: list[str], event_type: str) -> dict[str, int]:
        # The count is picked out of the document by SQLite (json_extract), not by parsing
        # every awaited document in Python 200 times a second: the poller must not take
        # the CPU the services need.
        (live,) = self._conn.execute("SELECT value FROM reporting_control WHERE name = 'live'").fetchone()
        path = f'$.types."{event_type}"'
        found: dict[str, int] = {}
        for start in range(0, len(trajectory_ids), 500):
            chunk = trajectory_ids[start:start + 500]
            rows = self._conn.execute(f"SELECT id, json_extract(data, ?) FROM g{int(live)}_docs "
                                      f"WHERE kind = 'trajectory' AND id IN ({', '.join('?' * len(chunk))})",
                                      (path, *chunk)).fetchall()
            found.update((id_, count or 0) for id_, count in rows)
        return found

    def close(self) -> None:
        self._conn.close()


class Watcher:
    """Notes when each awaited report shows in the read model: a report is the n-th of its
    type in its trajectory, and shows once the document counts n of them."""

    def __init__(self, read_model: ReadModel, event_type: str, baseline: dict[str, int]) -> None:
        self.read_model, self.event_type = read_model, event_type
        self.sent = dict(baseline)  # per trajectory: how many reports of the type were posted
        self.awaited: dict[str, list[tuple[int, float]]] = {}  # trajectory -> [(n, acked)]
        self.latencies: list[float] = []
        self.last_seen = 0.0

    def expect(self, trajectory_id: str) -> int:
        self.sent[trajectory_id] = self.sent.get(trajectory_id, 0) + 1
        return self.sent[trajectory_id]

    def acked(self, trajectory_id: str, n: int, at: float) -> None:
        self.awaited.setdefault(trajectory_id, []).append((n, at))

    async def run(self) -> None:
        while True:
            if self.awaited:
                counts = await asyncio.to_thread(self.read_model.counts, list(self.awaited), self.event_type)
                now = time.perf_counter()
                for trajectory_id, count in counts.items():
                    waiting = self.awaited[trajectory_id]
                    shown = [acked for n, acked in waiting if n <= count]
                    if shown:
                        self.latencies += [(now - acked) * 1000 for acked in shown]
                        self.last_seen = now
                        rest = [(n, acked) for n, acked in waiting if n > count]
                        if rest:
                            self.awaited[trajectory_id] = rest
                        else:
                            del self.awaited[trajectory_id]
            await asyncio.sleep(POLL_SECONDS)

    async def drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.awaited:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{sum(map(len, self.awaited.values()))} reports never reached reporting")
            await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU while nothing is asked of it, as a share of one core: the price
    of its polling loops (relay, desk, scheduler), paid whether there is work or not."""
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(seconds)
    return {name: (_cpu_seconds(pid) - before[name]) / seconds for name, pid in pids.items()}


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@contextlib.contextmanager
def services(bootstrap: str, workdir: Path) -> Iterator[tuple[dict[str, str], dict[str, Any], dict[str, str], str]]:
    """The four service processes on this run's broker; yields urls, processes, tokens and
    the provider's webhook secret."""
    credentials, tokens = write_credentials(workdir / "config")
    secret = next(c["webhook_secret"] for c in tomllib.loads(credentials.read_text())["credential"]
                  if c.get("provider") == PROVIDER)
    ports = {name: _free_port() for name in SERVICES}  # never the defaults a `make run` may hold
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, TWEESPOOR_DATA_DIR=str(workdir / "data"),
               TWEESPOOR_CREDENTIALS_FILE=str(credentials), TRAJECTORY_TENDER_FILE=str(TENDER),
               **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()})
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    with _services(env, workdir / "logs") as processes:
        for name in SERVICES:
            _wait_healthy(urls[name], processes[name], timeout=120)
        yield urls, processes, tokens, secret


async def open_trajectories(p: Pipeline, n: int, concurrency: int) -> list[str]:
    """`n` trajectories through intake, assigned to the bench's provider, each with a plan."""
    referred_on = (p.today - dt.timedelta(days=30)).isoformat()
    bsns = list(dict.fromkeys(demo_bsns(n + n // 10 + 10, seed=909)))[:n]
    semaphore = asyncio.Semaphore(concurrency)

    async def refer(i: int, bsn: str) -> str:
        body = {"bsn": bsn, "name": f"Bench Deelnemer {i}", "date_of_birth": "1980-05-15",
                "municipality": MUNICIPALITY, "programme": "social-activation", "benefit": "bijstand",
                "uwv_registered_on": referred_on, "distance_to_labour_market": "large",
                "referred_on": referred_on, "caseworker_id": f"bench-{i % 7}"}
        async with semaphore:
            response = await p.client.post(f"{p.urls['intake']}/referrals", json=body,
                                           headers=p.auth(f"{MUNICIPALITY}-case-system"))
        if response.status_code != 201 or response.json().get("status") != "referred":
            raise RuntimeError(f"referral answered {response.status_code}: {response.text[:300]}")
        return response.json()["trajectory_id"]

    ids = await asyncio.gather(*(refer(i, bsn) for i, bsn in enumerate(bsns)))
    deadline = time.monotonic() + 120
    while True:
        response = await p.client.get(f"{p.urls['trajectory']}/caseload", headers=p.auth(f"{PROVIDER}-provider"))
        held = {row["trajectory_id"] for row in response.json()}
        if held >= set(ids):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(set(ids) - held)} of {n} trajectories were never assigned")
        await asyncio.sleep(0.2)
    plan = {"type": "plan-agreed", "discipline": DISCIPLINE,
            "agreed_on": (p.today - dt.timedelta(days=25)).isoformat()}

    async def agree(trajectory_id: str) -> None:
        async with semaphore:
            await p.report(trajectory_id, plan)

    await asyncio.gather(*(agree(t) for t in ids))
    return ids


async def sustained(p: Pipeline, watcher: Watcher, ids: list[str], seconds: float, concurrency: int,
                    ) -> tuple[float, int]:
    """Clients posting back to back for `seconds`; returns events/s until reporting showed
    the last of them, and how many were posted."""
    lanes = [ids[i::concurrency] for i in range(concurrency)]  # one report at a time per trajectory
    started = time.perf_counter()
    stop = started + seconds
    posted = 0

    async def client(lane: list[str]) -> None:
        nonlocal posted
        i = 0
        while time.perf_counter() < stop:
            trajectory_id = lane[i % len(lane)]
            n = watcher.expect(trajectory_id)
            watcher.acked(trajectory_id, n, await p.report(trajectory_id, p.failed_mediation()))
            posted += 1
            i += 1

    await asyncio.gather(*(client(lane) for lane in lanes if lane))
    await watcher.drained(timeout=300)
    return posted / (watcher.last_seen - started), posted


async def at_rate(p: Pipeline, ids: list[str], rate: float, count: int, send) -> None:
    """`count` calls of `send(trajectory_id)` on a fixed schedule of `rate` per second
    (open loop: a slow answer does not delay the next), round-robin over trajectories that
    have no call in flight."""
    idle = asyncio.Queue()
    for trajectory_id in ids:
        idle.put_nowait(trajectory_id)
    started = time.perf_counter()
    tasks = []

    async def one(trajectory_id: str) -> None:
        try:
            await send(trajectory_id)
        finally:
            idle.put_nowait(trajectory_id)

    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(await idle.get())))
    await asyncio.gather(*tasks)


async def half_rate(p: Pipeline, watcher: Watcher, ids: list[str], rate: float, seconds: float) -> list[float]:
    """Failed mediations at `rate`; the milliseconds from each 202 until reporting shows it."""
    watcher.latencies = []

    async def send(trajectory_id: str) -> None:
        n = watcher.expect(trajectory_id)
        watcher.acked(trajectory_id, n, await p.report(trajectory_id, p.failed_mediation()))

    await at_rate(p, ids, rate, max(1, int(rate * seconds)), send)
    await watcher.drained(timeout=300)
    return list(watcher.latencies)


async def placements(p: Pipeline, ids: list[str], rate: float) -> list[float]:
    """Every trajectory placed in a job at `rate`; the milliseconds from each 202 until
    coaching has started the plan (coaching's list of plans, polled)."""
    acked: dict[str, float] = {}
    latencies: list[float] = []
    body = {"type": "placed-in-job", "discipline": DISCIPLINE, "employer": "Bakkerij De Korenschoof",
            "hours_per_week": 32, "contract_type": "fixed-term", "starts_on": p.today.isoformat()}

    async def send(trajectory_id: str) -> None:
        acked[trajectory_id] = await p.report(trajectory_id, body)

    async def watch() -> None:
        while len(latencies) < len(ids):
            response = await p.client.get(f"{p.urls['coaching']}/plans",
                                          headers=p.auth(f"{MUNICIPALITY}-case-system"))
            now = time.perf_counter()
            for plan in response.json()["plans"]:
                t = plan["trajectory_id"]
                if t in acked and t not in seen:
                    seen.add(t)
                    latencies.append((now - acked[t]) * 1000)
            await asyncio.sleep(0.02)

    seen: set[str] = set()
    watching = asyncio.create_task(watch())
    await at_rate(p, ids, rate, len(ids), send)
    await asyncio.wait_for(watching, timeout=300)
    return latencies


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if len(samples) > 1 else samples[0]


@contextlib.contextmanager
def profiled(pids: dict[str, int], seconds: float, into: Path | None) -> Iterator[None]:
    """With `into`, py-spy samples each service process for `seconds`: only the thread
    holding the GIL (CPU, not waits), as raw collapsed stacks in `<service>.txt` for
    `python -m bench.hotspots`. It needs the `bench` dependency group and the right to
    ptrace the services (root, or kernel.yama.ptrace_scope=0)."""
    if into is None:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    spies = [subprocess.Popen([shutil.which("py-spy") or "py-spy", "record", "-p", str(pid), "-d", str(int(seconds)),
                               "-r", "50", "--gil", "--format", "raw", "-o", str(into / f"{name}.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
             for name, pid in pids.items()]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait(timeout=seconds + 60)


async def measure(bootstrap: str, round_trip: float | None, *, trajectories: int = 200,
                  seconds: float = 30.0, concurrency: int = 16, workdir: Path | None = None,
                  profile: Path | None = None) -> dict[str, Figure]:
    await ensure_topics(bootstrap)
    with tempfile.TemporaryDirectory(prefix="tweespoor-bench-e2e-", dir=workdir) as tmp, \
            services(bootstrap, Path(tmp)) as (urls, processes, tokens, secret):
        # Idle connections let go after 2 s, before uvicorn closes its end (5 s): reusing
        # one at the moment the server closes it fails the request (httpx.ReadError).
        limits = httpx.Limits(max_connections=concurrency * 4, max_keepalive_connections=concurrency * 4,
                              keepalive_expiry=2.0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            p = Pipeline(urls, {n: proc.pid for n, proc in processes.items()}, tokens, secret,
                         Path(tmp) / "data" / "reporting.db", client)
            ids = await open_trajectories(p, trajectories, concurrency)
            idle = await idle_cpu(p.pids, IDLE_SECONDS)
            read_model = ReadModel(p.reporting_db)
            watcher = Watcher(read_model, FAILED, {})
            watching = asyncio.create_task(watcher.run())
            try:
                cpu = {name: _cpu_seconds(pid) for name, pid in {**p.pids, "bench": os.getpid()}.items()}
                with profiled(p.pids, seconds, profile):
                    rate, posted = await sustained(p, watcher, ids, seconds, concurrency)
                # CPU per report drifts far less than rates on a shared machine: where the
                # work goes, process by process (the bench's own client and poller included).
                cpu = {name: (_cpu_seconds(pid) - cpu[name]) / posted * 1000
                       for name, pid in {**p.pids, "bench": os.getpid()}.items()}
                latencies = await half_rate(p, watcher, ids, rate / 2, seconds)
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
                read_model.close()
            coaching = await placements(p, ids, rate / 2)
            rss = {name: _peak_rss_mb(pid) for name, pid in p.pids.items()}
    p50, p99 = statistics.median(latencies), _p(latencies, 99)
    met_rate = None if not round_trip else rate / round_trip >= TARGET_RATIO
    return {
        "rate": Figure(STAGE, "sustained events/s, webhook to reporting's read model", rate, "events/s",
                       limit_name="raw round trip (a)", limit=round_trip, target=f"ratio >= {TARGET_RATIO}",
                       met=met_rate,
                       note=f"{posted:,} signed reports by {concurrency} clients over {seconds:.0f} s, "
                            f"{trajectories} trajectories; counted until reporting showed the last"),
        "latency": Figure(STAGE, f"p99 at half rate ({rate / 2:,.0f}/s), 202 to reporting's read model", p99,
                          "ms", target=f"< {TARGET_P99_MS:.0f} ms", met=p99 < TARGET_P99_MS,
                          note=f"p50 {p50:.0f} ms; {len(latencies):,} reports"),
        "coaching": Figure(STAGE, "p99, placed-in-job 202 to coaching's plan", _p(coaching, 99), "ms",
                           note=f"p50 {statistics.median(coaching):.0f} ms; {len(coaching)} placements "
                                "at half rate; coaching polled every 20 ms"),
        "cpu": Figure(STAGE, "CPU per report, back to back, all four services", sum(
                          ms for name, ms in cpu.items() if name != "bench"), "ms",
                      note=", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items()) + " ms"),
        "idle": Figure(STAGE, "CPU of the four services at rest", sum(idle.values()) * 100, "% of a core",
                       note=", ".join(f"{name} {share * 100:.1f}" for name, share in idle.items())
                            + f" % over {IDLE_SECONDS:.0f} s with nothing to do"),
        **{f"rss_{name}": Figure(STAGE, f"peak RSS: {name}", mb, "MB", target=f"< {TARGET_RSS_MB:.0f} MB",
                                 met=mb < TARGET_RSS_MB, note="VmHWM over the whole stage")
           for name, mb in rss.items()},
    }
