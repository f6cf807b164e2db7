"""A realistic year, end to end (issue 6): the referrals of the five municipalities
(drawn from a seed by `tests.e2e.year`: 2400 by default, some 2100 trajectories; another
size with `TWEESPOOR_YEAR_REFERRALS`) go through the four service processes and a Kafka broker of
their own, as the real callers would send them:

1. the municipalities' case systems post every referral to intake, the first wave before
   the places run out;
2. trajectory assigns the entry discipline to the contracted providers until their places
   are full, and puts the rest of the first wave on waitlists; reporting must show exactly
   those waitlists;
3. the regional staff give the contracts more places (an audited change); everyone waiting
   gets a provider, and so does the rest of the year's referrals;
4. each provider reads its caseload and reports on its trajectories with signed webhooks:
   plans, WNK contracts, obstacles, placements, closings;
5. the municipalities' job coaches record check-ins and lost jobs in the coaching year;
   coaching's scheduler, started again, records overdue check-ins, the six-month point
   and the end of every coaching year (they all lie in the past);

and reporting's figures, read over its HTTP API, must equal those worked out from the
plan and the tender's data file alone. `TWEESPOOR_YEAR_REFERRALS` and
`TWEESPOOR_YEAR_SEED` change the size and the draw.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.access import hash_token, new_token
from contracts.webhooks import sign
from infra.demo import write_credentials
from infra.kafka import LocalKafka, free_port
from tests.e2e.year import (
    FIRST_DAY, LAST_DAY, MUNICIPALITY_WEIGHTS, Referral, expected_figures, plan_year,
    waitlisted_at_first,
)
from tests.support.people import made_up_bsns

pytestmark = [pytest.mark.kafka]

SERVICES = ("intake", "trajectory", "coaching", "reporting")
# The services spend about 0.2 CPU-seconds per referral between them (measured), so the
# default of 2400 referrals (some 2100 trajectories, 7000 HTTP requests) takes about six
# minutes on two cores (measured at load 7); 1000 takes under three.
REFERRALS = int(os.environ.get("TWEESPOOR_YEAR_REFERRALS", "2400"))
TIMEOUT = int(os.environ.get("TWEESPOOR_YEAR_TIMEOUT", "900"))  # a machine shared with others is slower
SEED = int(os.environ.get("TWEESPOOR_YEAR_SEED", "2007"))
PARALLEL = 16  # requests in flight at once
FIRST_WAVE = 0.3  # the share of referrals that arrive before the contracts get more places
WAIT = 120 + 0.1 * REFERRALS  # seconds for the services to catch up after each phase
FIVE = sorted(MUNICIPALITY_WEIGHTS)
# Trajectories count in the period of their referral date (a rejection in that of its
# decision, which intake dates today): the year's figures are read for the whole broker,
# which holds nothing else, and for the year's period where that is what is asked.
PERIOD = {"start": FIRST_DAY.isoformat(), "end": LAST_DAY.isoformat()}


class Service:
    """One service as its own process, in its own session, logging to a file."""

    def __init__(self, name: str, env: dict[str, str], port: int, logs: Path) -> None:
        self.name, self.env, self.port, self.log = name, env, port, logs / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", f"{self.name}.main"], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.tail()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy in {timeout:.0f} s\n{self.tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@pytest.fixture
def landscape(tmp_path):
    """A broker of its own (the year's consumer groups and topics start empty), the four
    services on SQLite, and a token for every caller; the regional staff may also change
    contracts."""
    with contextlib.ExitStack() as stack:
        broker = LocalKafka(data_dir=tmp_path / "kafka")
        stack.callback(broker.stop, timeout=10)
        broker.start()
        credentials, tokens = write_credentials(tmp_path / "config")
        tokens["tender-admin"] = new_token()
        with credentials.open("a") as file:
            file.write('\n[[credential]]\nid = "tender-admin"\nkind = "staff"\nscopes = ["contracts:write"]\n'
                       f'token_sha256 = "{hash_token(tokens["tender-admin"])}"\n')
        secrets = {c["provider"]: c["webhook_secret"]
                   for c in tomllib.loads(credentials.read_text())["credential"] if c.get("webhook_secret")}
        ports: dict[str, int] = {}
        while len(set(ports.values())) < len(SERVICES):
            ports = {name: free_port() for name in SERVICES}
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
                   TWEESPOOR_CREDENTIALS_FILE=str(credentials), TWEESPOOR_DATA_DIR=str(tmp_path / "data"),
                   INTAKE_PSEUDONYM_KEY="year-test-pseudonym-key-" + uuid.uuid4().hex,
                   # The scheduler runs when coaching starts; the test starts it again at the end.
                   COACHING_SCHEDULER_SECONDS="86400",
                   **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
        for name in SERVICES:
            env.pop(f"{name.upper()}_DATABASE_URL", None)
        env.pop("DATABASE_URL", None)
        logs = tmp_path / "logs"
        logs.mkdir()
        services = {name: Service(name, env, ports[name], logs) for name in SERVICES}
        stack.callback(_stop_all, services.values())
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_healthy()
        yield services, tokens, secrets


def _stop_all(services: Any, timeout: float = 20.0) -> None:
    """SIGTERM to every service at once; SIGKILL to what still runs after `timeout`."""
    running = [s for s in services if s.proc is not None and s.proc.poll() is None]
    for service in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for service in running:
        try:
            service.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(service.proc.pid, signal.SIGKILL)
            service.proc.wait()


class Caller:
    """Parallel HTTP with retries on 503 and broken connections (a busy store)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=PARALLEL * 2))
        self.gate = asyncio.Semaphore(PARALLEL)
        self.retries = 0

    async def send(self, method: str, url: str, *, who: str | None = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        headers = dict(headers or {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        for attempt in range(30):
            async with self.gate:
                try:
                    response = await self.client.request(method, url, headers=headers, **kwargs)
                except httpx.TransportError:
                    response = None
            if response is not None and response.status_code != 503:
                break
            self.retries += 1
            await asyncio.sleep(min(0.1 * 2 ** attempt, 2.0))
        assert response is not None and response.status_code == expect, \
            f"{method} {url}: {response.status_code if response else 'no answer'} {response.text[:400] if response else ''}"
        return response.json() if response.content else None

    async def report(self, trajectory: str, provider: str, secret: str, step: int, body: dict[str, Any],
                     base: str) -> None:
        """A signed provider webhook; its id is fixed per step, so a retry is the same report."""
        raw = json.dumps(body).encode()
        headers = sign(secret, raw, msg_id=f"msg_{trajectory}_{step}")
        await self.send("POST", f"{base}/providers/{provider}/trajectories/{trajectory}/reports",
                        content=raw, headers=headers, expect=202)


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(1.0)  # each look makes reporting compute every figure
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.mark.timeout(TIMEOUT)
def test_a_realistic_year_through_the_real_services_gives_the_figures_of_its_plan(landscape):
    services, tokens, secrets = landscape
    year = plan_year(REFERRALS, SEED)
    bsns = made_up_bsns(len(year), random.Random(SEED))
    started = time.monotonic()
    asyncio.run(_drive(year, bsns, services, tokens, secrets, started))
    print(f"\nthe year of {len(year)} referrals took {time.monotonic() - started:.0f} s", flush=True)


async def _drive(year: list[Referral], bsns: list[str], services: dict[str, Service],
                 tokens: dict[str, str], secrets: dict[str, str], started: float) -> None:
    http = Caller(tokens)
    urls = {name: s.url for name, s in services.items()}
    eligible = [r for r in year if r.eligible]

    async def figures(who: str = "region-staff", **params: Any) -> dict[str, Any]:
        return await http.send("GET", f"{urls['reporting']}/figures", who=who, params=params)

    def note(text: str) -> None:
        print(f"  {time.monotonic() - started:5.0f} s: {text}", flush=True)

    # 1. The first wave of referrals, by each municipality's case system.
    async def refer(r: Referral) -> tuple[int, dict[str, Any]]:
        return r.index, await http.send("POST", f"{urls['intake']}/referrals", who=f"{r.municipality}-case-system",
                                        json=r.body(bsns[r.index]), expect=201,
                                        headers={"Idempotency-Key": f"year-{SEED}-{r.index}"})

    wave = year[:int(len(year) * FIRST_WAVE)]
    answers = dict(await asyncio.gather(*(refer(r) for r in wave)))
    note(f"first wave of {len(wave)} referrals posted")

    # 2. Every entry discipline decided: assigned while places last, the rest waitlisted.
    in_wave = sum(r.eligible for r in wave)

    async def decided() -> dict[str, Any] | None:
        f = await figures()
        assigned = sum(row["assigned"] for row in f["providers"])
        return f if assigned + f["waitlists"]["waitlisted"] == in_wave else None

    first = await until("every entry discipline decided", decided)
    predicted = waitlisted_at_first(wave)
    shown = {(row["programme"], row["discipline"]): row["waitlisted"] for row in first["waitlists"]["by_discipline"]}
    assert shown == {k: v for k, v in predicted.items() if v}
    assert first["waitlists"]["waiting"] == sum(predicted.values()) == first["trajectories"]["waiting_for_a_provider"]
    note(f"waitlists as predicted: {sum(predicted.values())} waiting")

    # 3. More places for every contract: whoever waits gets a provider, from the day they
    # began to wait; then the rest of the year's referrals.
    contracts = await http.send("GET", f"{urls['trajectory']}/contracts", who="tender-admin")
    await asyncio.gather(*(http.send("POST", f"{urls['trajectory']}/contracts/{c['contract_id']}/places",
                                     who="tender-admin", json={"places": 10_000, "on": "2007-01-01",
                                                               "reason": "the busy year of the end-to-end test"})
                           for c in contracts))
    answers |= dict(await asyncio.gather(*(refer(r) for r in year[len(wave):])))
    wrongly = [r.index for r in year if (answers[r.index]["status"] == "rejected") == r.eligible]
    assert not wrongly, f"intake decided against the rules on {wrongly[:10]}"
    trajectory_of = {r.index: answers[r.index]["trajectory_id"] for r in eligible}
    note(f"all {len(year)} referrals posted, {len(eligible)} eligible")
    await until("nobody waits, everyone has a provider", lambda: _no_one_waits(figures, len(eligible)))
    note("nobody waits")

    # 4. The providers report on their caseloads with signed webhooks.
    holder: dict[str, tuple[str, str]] = {}
    for provider in secrets:
        for held in await http.send("GET", f"{urls['trajectory']}/caseload", who=f"{provider}-provider"):
            holder[held["trajectory_id"]] = (provider, held["discipline"])
    assert set(trajectory_of.values()) <= set(holder), "a trajectory without a provider"

    async def follow(r: Referral, steps: range) -> None:
        trajectory = trajectory_of[r.index]
        provider, discipline = holder[trajectory]
        for n in steps:
            assert r.steps[n].body["discipline"] == discipline
            await http.report(trajectory, provider, secrets[provider], n, r.steps[n].body, urls["trajectory"])

    expected = expected_figures(year, FIVE)
    await asyncio.gather(*(follow(r, range(r.asking)) for r in eligible))

    async def every_discipline_assigned() -> bool:
        per_discipline: dict[str, int] = {}
        for row in (await figures())["providers"]:
            per_discipline[row["discipline"]] = per_discipline.get(row["discipline"], 0) + row["assigned"]
        return dict(sorted(per_discipline.items())) == expected["assigned_per_discipline"]

    await until("a provider in every discipline the plans and obstacles ask for", every_discipline_assigned)
    await asyncio.gather(*(follow(r, range(r.asking, len(r.steps))) for r in eligible))
    note(f"{sum(len(r.steps) for r in eligible)} provider reports sent")

    # 5. The coaching year: check-ins and lost jobs by the municipalities' own coaches.
    placed = {trajectory_of[r.index]: r for r in eligible if r.coaching}

    async def plans_of(municipality: str) -> list[dict[str, Any]]:
        return (await http.send("GET", f"{urls['coaching']}/plans", who=f"{municipality}-coach"))["plans"]

    async def every_plan() -> list[dict[str, Any]] | None:
        plans = [p for m in FIVE for p in await plans_of(m)]
        return plans if len(plans) == len(placed) else None

    plans = await until("a coaching plan for every placement", every_plan)

    async def coach(plan: dict[str, Any]) -> None:
        r = placed[plan["trajectory_id"]]
        c, base = r.coaching, f"{urls['coaching']}/plans/{plan['plan_id']}"
        for n in range(1, c.check_ins + 1):
            await http.send("POST", f"{base}/check-ins", who=f"{r.municipality}-coach", expect=201,
                            json={"check_in": n, "held_on": c.due(n).isoformat(), "contact_made": True,
                                  "still_employed": True}, headers={"Idempotency-Key": f"{plan['plan_id']}-{n}"})
        if c.lost_on:
            await http.send("POST", f"{base}/job-losses", who=f"{r.municipality}-coach", expect=201,
                            json={"lost_on": c.lost_on.isoformat(), "reason": c.loss_reason},
                            headers={"Idempotency-Key": f"{plan['plan_id']}-lost"})

    await asyncio.gather(*(coach(p) for p in plans))
    note(f"{sum(r.coaching.check_ins for r in placed.values())} check-ins recorded")
    # Every coaching year lies in the past: coaching's scheduler, when it starts, records
    # the overdue check-ins, the six-month points and the ends of them all.
    services["coaching"].stop()
    services["coaching"].start()
    await asyncio.to_thread(services["coaching"].wait_healthy)

    async def settled() -> dict[str, Any] | None:
        f = await figures()
        done = (f["coaching"]["completed"] == len(placed) and f["coaching"]["outcomes"]["24_months"]["reached"] == len(placed)
                and f["trajectories"]["trajectories"]["closed"] == expected["closed"]
                and f["coaching"]["check_ins_overdue"] == expected["coaching"]["check_ins_overdue"])
        return f if done else None

    try:
        await until("reporting to have the whole year", settled)
    finally:
        note(f"{http.retries} retries")
    await http.client.aclose()

    # The figures, for the five together and for each municipality on its own credential.
    combined = await _figures_with_new_client(tokens, urls["reporting"], "region-staff")
    _check(combined, expected, "the five")
    for municipality in FIVE:
        own = await _figures_with_new_client(tokens, urls["reporting"], f"{municipality}-staff")
        assert own["municipalities"] == [municipality]
        _check(own, expected_figures(year, [municipality]), municipality)
        # The combined answer's row for a municipality is that municipality's own figure.
        mine = {k: v for k, v in own["coaching"]["outcomes"].items() if k != "as_of"}
        assert combined["coaching"]["outcomes_by"]["municipality"].get(municipality, mine) == mine, municipality
    # The year's period: its volumes against the volumes contracted for that period.
    period = await _figures_with_new_client(tokens, urls["reporting"], "region-staff", PERIOD)
    assert {v["programme"]: (v["opened"], v["contracted_yearly"], v["contracted_for_period"])
            for v in period["volumes"]} == {p: (expected["volumes"][p], *expected["contracted"][p])
                                            for p in expected["volumes"]}
    assert period["trajectories"]["trajectories"]["placed"] == expected["placed"]


async def _no_one_waits(figures: Callable[..., Awaitable[dict[str, Any]]], eligible: int) -> bool:
    f = await figures()
    return f["waitlists"]["waiting"] == 0 and sum(row["assigned"] for row in f["providers"]) == eligible


async def _figures_with_new_client(tokens: dict[str, str], url: str, who: str,
                                   params: dict[str, str] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(f"{url}/figures", params=params or {},
                                    headers={"Authorization": f"Bearer {tokens[who]}"})
        assert response.status_code == 200, response.text
        return response.json()


def _check(f: dict[str, Any], e: dict[str, Any], who: str) -> None:
    t, c = f["trajectories"], f["coaching"]
    got = {
        "referrals": t["referrals"], "rejected": t["rejected"], "rejections_by_reason": t["rejections_by_reason"],
        "opened": t["trajectories"]["opened"], "placed": t["trajectories"]["placed"],
        "closed": t["trajectories"]["closed"], "closed_by_reason": t["trajectories"]["closed_by_reason"],
        "open": t["trajectories"]["open"], "outflow_share": t["outflow_to_work"]["share"],
        "median_days": t["median_days"], "volumes": t["volumes_by_programme"],
    }
    assert got == {k: e[k] for k in got}, who
    assert got["open"] + got["placed"] + got["closed"] == got["opened"], who  # the figures add up
    assert sum(got["closed_by_reason"].values()) == got["closed"], who
    assert {v["programme"]: (v["opened"], v["contracted_yearly"]) for v in f["volumes"]} \
        == {p: (n, e["contracted"][p][0]) for p, n in e["volumes"].items()}, who
    per_discipline: dict[str, int] = {}
    for row in f["providers"]:
        per_discipline[row["discipline"]] = per_discipline.get(row["discipline"], 0) + row["assigned"]
    assert dict(sorted(per_discipline.items())) == e["assigned_per_discipline"], who
    budgets = {b["budget"]: {k: b[k] for k in ("budget_eur", "used_eur", "used_by_source_eur", "budget_by_source_eur")}
               for b in f["budgets"]}
    assert budgets == e["budgets"], who
    assert all(b["assignments_without_a_tariff"] == 0 for b in f["budgets"]), who
    assert sum(row["committed_eur"] for row in f["providers"]) == sum(b["used_eur"] for b in e["budgets"].values()), who
    assert f["waitlists"]["waiting"] == 0, who
    coaching = {"plans": c["plans"], "completed": c["completed"], "jobs_lost": c["jobs_lost"],
                "check_ins_overdue": c["check_ins_overdue"],
                "outcomes": {point: {k: v for k, v in c["outcomes"][point].items() if k != "same_employer"}
                             for point in ("6_months", "12_months", "24_months")}}
    assert coaching == e["coaching"], who
    for block in coaching["outcomes"].values():  # the results add up, and claim no more than is proven
        assert block["employed"] + block["not_employed"] + block["unknown"] == block["reached"] == c["plans"], who
        assert sum(block["by_evidence"].values()) == block["employed"] + block["not_employed"], who
    # No new jobs within the year: whoever is proven in work at twelve months is with the first employer.
    assert c["outcomes"]["12_months"]["same_employer"] == e["coaching"]["outcomes"]["12_months"]["employed"], who
