"""`tweespoor run`: Kafka and the four services on this machine, a small demo, and where to look.

Each service runs as its own process, exactly as in production, with the embedded
defaults (an SQLite file each) or PostgreSQL (`--store postgres`). Ctrl-C stops the
services, then the broker, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from contracts.kafka import ensure_topics
from contracts.runtime import DEFAULT_PORTS
from infra import discovery
from infra.demo import write_credentials

SERVICES = ("intake", "trajectory", "coaching", "reporting")


def demo_bsns(count: int, seed: int = 2006) -> list[str]:
    """Made-up numbers that pass the 11-test, for demo referrals only."""
    rng, found = random.Random(seed), []
    while len(found) < count:
        digits = [rng.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            found.append("".join(map(str, digits)) + str(last))
    return found


# Inside every programme's contract period of the tender: Focus2Move's pilot ran from
# January 2008, the other two programmes until April 2008.
DEMO_DAY = dt.date(2008, 2, 1)


def demo_referrals() -> list[dict[str, str]]:
    """Made-up people, one or more per municipality, each eligible for the programme.

    Dated in the tender's contract periods: trajectory assigns a provider only to referrals
    made while a contract ran."""
    today = DEMO_DAY
    plan = [("alkmaar", "focus2move", "bijstand"), ("alkmaar", "social-activation", "bijstand-wao"),
            ("bergen", "reintegration", "anw"), ("castricum", "social-activation", "wao"),
            ("heerhugowaard", "reintegration", "none"), ("heiloo", "social-activation", "bijstand")]
    return [
        {"bsn": bsn, "name": f"Demo Deelnemer {i + 1}", "date_of_birth": f"19{70 + i}-0{i + 1}-15",
         "municipality": m, "programme": p, "benefit": b,
         "uwv_registered_on": (today - dt.timedelta(days=90)).isoformat(),
         "distance_to_labour_market": "large",
         "referred_on": (today - dt.timedelta(days=i)).isoformat(), "caseworker_id": f"demo-{i}"}
        for i, ((m, p, b), bsn) in enumerate(zip(plan, demo_bsns(len(plan)), strict=True))
    ]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}; see its log")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


@contextlib.contextmanager
def _services(env: dict[str, str], log_dir: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in SERVICES:
            log = (log_dir / f"{name}.log").open("ab")
            processes[name] = subprocess.Popen([sys.executable, "-m", f"{name}.main"], env=env,
                                               stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def run(*, data_dir: Path, store: str = "sqlite", demo: bool = True) -> int:
    """Runs everything until Ctrl-C or SIGTERM; returns the exit code."""
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)

    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(discovery.kafka())
        print(f"Kafka: {broker.bootstrap_servers} ({broker.kind})", flush=True)
        asyncio.run(ensure_topics(broker.bootstrap_servers))
        credentials, tokens = write_credentials(data_dir / "config")
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
                   TWEESPOOR_DATA_DIR=str(data_dir), TWEESPOOR_CREDENTIALS_FILE=str(credentials))
        if store == "postgres":
            postgres = stack.enter_context(discovery.postgres())
            for name in SERVICES:
                postgres.create_database(f"tweespoor_{name}")
                env[f"{name.upper()}_DATABASE_URL"] = postgres.url(f"tweespoor_{name}")
            print(f"PostgreSQL: {postgres.kind}", flush=True)
        urls = {n: f"http://127.0.0.1:{env.get(f'{n.upper()}_PORT', DEFAULT_PORTS[n])}"
                for n in SERVICES}
        for name in ("intake", "trajectory", "coaching"):  # audit reads and BSN lookups
            env.setdefault(f"REPORTING_{name.upper()}_URL", urls[name])
        processes = stack.enter_context(_services(env, log_dir))
        for name in SERVICES:
            _wait_healthy(urls[name], processes[name])
        if demo:
            for body in demo_referrals():
                token = tokens[f"{body['municipality']}-case-system"]
                httpx.post(f"{urls['intake']}/referrals", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            print(f"Demo: {len(demo_referrals())} referrals posted to intake.", flush=True)
        print("\nTweespoor is running:", flush=True)
        for name in SERVICES:
            print(f"  {name:<11} {urls[name]}/docs", flush=True)
        print(f"  dashboard   {urls['reporting']}/dashboard (sign in with a *-staff token)", flush=True)
        print(f"  logs        {log_dir}", flush=True)
        print(f"  tokens      {credentials.parent / 'tokens.toml'} (one per client application)",
              flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while not stop["now"]:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} stopped unexpectedly (exit {process.returncode}); "
                          f"see {log_dir / (name + '.log')}", flush=True)
                    return 1
            time.sleep(0.2)
        print("Stopping…", flush=True)
    print("Stopped.", flush=True)
    return 0

