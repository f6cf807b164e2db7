"""`tweespoor run`: Kafka and the four services on this machine, a small demo, and where to look.

Each service runs as its own process, exactly as in production, with the embedded
defaults (an SQLite file each) or PostgreSQL (`--store postgres`). The local broker keeps
its data in the run's data directory, so a second run resumes the same topics, and the
demo referrals are posted idempotently. A service that dies is restarted with backoff, as
a process supervisor would. Ctrl-C stops the services, then the broker, leaves no process
behind and deletes no data.

The run is an installation of its own, set in the tender's period: every service takes
"today" from one simulated clock (`contracts.clock`) that starts on the demo's day and
runs a day per real minute, so check-ins fall due while one watches. Its epoch is kept
in the data directory (`clock.json`); a second run continues from the simulated moment
the first one stopped at.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import httpx

from contracts.clock import ANCHOR_ENV, SPEED_ENV, START_ENV, InstallationClock, parse_start, wall_now
from contracts.kafka import ensure_topics
from contracts.runtime import DEFAULT_PORTS
from contracts.storelock import EXIT_STORE_IN_USE as EXIT_REFUSED
from infra import discovery
from infra.demo import WEBHOOK_SECRETS, write_credentials
from infra.kafka import _die_with_parent_hook, tail
from infra.postgres import provision_service

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


# The demo's clock: one simulated day per real minute (1440 × real time), so that a coaching
# plan's check-ins (weeks 2, 6, 13, …) fall due one by one over a demo's minutes and hours,
# and the tender's last contracts (until 30 April 2008) run for some ninety minutes.
DEMO_CLOCK_SPEED = 1440.0
CLOCK_FILE = "clock.json"


def demo_clock(data_dir: Path, env: Mapping[str, str], *,
               real: Callable[[], dt.datetime] = wall_now) -> InstallationClock:
    """The clock of the run's installation, and its epoch written to `<data_dir>/clock.json`.

    The first run starts on `DEMO_DAY` at `DEMO_CLOCK_SPEED`; a later run on the same data
    directory continues from the simulated moment the one before reached (recorded by
    `keep_clock` while it ran, and when it stopped), not from where the real time since
    would put it: a demo left for a night would otherwise wake up years after the tender.
    The environment may set the clock instead: `TWEESPOOR_CLOCK_START` with
    `TWEESPOOR_CLOCK_ANCHOR` is taken as it is; `TWEESPOOR_CLOCK_START` alone starts there
    now; `TWEESPOOR_CLOCK_SPEED` sets the pace."""
    if env.get(START_ENV) and env.get(ANCHOR_ENV):
        return InstallationClock.from_env(env, real=real)
    path = data_dir / CLOCK_FILE
    kept: dict[str, object] = {}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            kept = json.loads(path.read_text())
    speed = float(env.get(SPEED_ENV) or kept.get("speed", DEMO_CLOCK_SPEED))  # type: ignore[arg-type]
    begin = parse_start(env[START_ENV] if env.get(START_ENV) else DEMO_DAY.isoformat())
    if not env.get(START_ENV) and isinstance(kept.get("reached"), str):
        with contextlib.suppress(ValueError):
            begin = dt.datetime.fromisoformat(str(kept["reached"])).astimezone(dt.UTC)
    clock = InstallationClock(start=begin, anchor=real(), speed=speed, real=real)
    keep_clock(path, clock)
    return clock


def keep_clock(path: Path, clock: InstallationClock) -> None:
    """Writes the clock's epoch and the simulated moment it has reached (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {"start": clock.start.isoformat() if clock.start else None,
            "anchor": clock.anchor.isoformat() if clock.anchor else None,
            "speed": clock.speed, "reached": clock.now().isoformat()}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(kept, indent=2) + "\n")
    temporary.replace(path)


def describe_clock(clock: InstallationClock) -> str:
    per_minute = ", one day per real minute" if clock.simulated and clock.speed == DEMO_CLOCK_SPEED else ""
    return f"{clock.today().isoformat()} ({clock.describe()}{per_minute})"


def demo_test_bsns(count: int) -> list[str]:
    """BSNs from the 99999xxxx series Dutch test environments use for made-up people, each
    passing the 11-test: a demo referral is never someone's real number."""
    found = []
    for number in range(999_990_000, 1_000_000_000):
        digits = f"{number:09d}"
        if sum(int(d) * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True)) % 11 == 0:
            found.append(digits)
            if len(found) == count:
                return found
    raise ValueError("the test series has fewer numbers than asked")


def demo_referrals() -> list[dict[str, str]]:
    """Made-up people, one or more per municipality, each eligible for the programme, and
    recognisable as demo data: named "Demo Deelnemer <n>", referred by caseworker
    "demo-caseworker-<n>", with a BSN from the test series (`demo_test_bsns`).

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
         "referred_on": (today - dt.timedelta(days=i)).isoformat(), "caseworker_id": f"demo-caseworker-{i + 1}"}
        for i, ((m, p, b), bsn) in enumerate(zip(plan, demo_test_bsns(len(plan)), strict=True))
    ]


def demo_key(body: Mapping[str, str]) -> str:
    """The Idempotency-Key of one demo referral: the same for the same referral in every
    run, another when the demo's referral changes (a key reused for another body is a 422)."""
    digest = hashlib.sha256(json.dumps(dict(body), sort_keys=True).encode()).hexdigest()
    return f"tweespoor-run-demo-{digest[:24]}"


def post_demo_referrals(intake_url: str, tokens: Mapping[str, str],
                        referrals: Sequence[Mapping[str, str]] | None = None) -> tuple[int, int]:
    """Posts the demo referrals, each with a stable Idempotency-Key, so a second run gets
    the first answer again instead of a second referral. A 409 (an open referral of that
    person already exists, e.g. one posted before keys were sent) is fine too; any other
    error raises. Returns (answered 201, already open)."""
    posted = already = 0
    with httpx.Client(timeout=10) as client:
        for body in demo_referrals() if referrals is None else referrals:
            token = tokens[f"{body['municipality']}-case-system"]
            response = client.post(f"{intake_url}/referrals", json=dict(body),
                                   headers={"Authorization": f"Bearer {token}",
                                            "Idempotency-Key": demo_key(body)})
            if response.status_code == 409:
                already += 1
            else:
                response.raise_for_status()
                posted += 1
    return posted, already


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0,
                  log_file: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = f"; last lines of {log_file}:\n{tail(log_file)}" if log_file else "; see its log"
            raise RuntimeError(f"{url} exited with {process.returncode}{where}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not become healthy in {timeout:.0f} s")


def _say(line: str) -> None:
    print(f"{dt.datetime.now():%H:%M:%S} {line}", flush=True)


def _exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Runs named commands, each in a session of its own with its output appended to
    `<log_dir>/<name>.log`, and restarts one that exits while it should run, as a process
    supervisor would: after `backoff` seconds, doubling on each quick death up to
    `max_backoff`, and from `backoff` again once the process had stayed up `stable_after`
    seconds. Call `poll()` regularly; `stop()` ends them all (SIGTERM, then SIGKILL). A
    process that exits with code 78 (EX_CONFIG: as a service whose SQLite store another
    process serves) refused to run as configured and is not restarted (`refused`).
    """

    def __init__(self, commands: Mapping[str, Sequence[str]], log_dir: Path,
                 env: Mapping[str, str] | None = None, *, backoff: float = 1.0,
                 max_backoff: float = 30.0, stable_after: float = 60.0,
                 say: Callable[[str], None] = _say) -> None:
        self.commands = {name: list(command) for name, command in commands.items()}
        self.log_dir, self.env, self.say = log_dir, dict(env) if env is not None else None, say
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = dict.fromkeys(self.commands, 0)
        self._started_at: dict[str, float] = {}
        self._next_delay = dict.fromkeys(self.commands, backoff)
        self._restart_at: dict[str, float] = {}  # name -> when a dead process starts again
        self._stopping = False
        self.refused: set[str] = set()  # exited with EXIT_REFUSED: never restarted

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(name).open("ab") as log:
            process = subprocess.Popen(self.commands[name], env=self.env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       preexec_fn=_die_with_parent_hook())  # none left if we are killed
        self.processes[name] = process
        self._started_at[name] = time.monotonic()
        return process

    def start(self) -> None:
        for name in self.commands:
            self._spawn(name)

    def poll(self) -> None:
        """One round: note the processes that died, start again those whose wait is over."""
        if self._stopping:
            return
        now = time.monotonic()
        for name, process in self.processes.items():
            if name in self._restart_at or name in self.refused or process.poll() is None:
                continue
            if process.returncode == EXIT_REFUSED:  # its configuration is wrong: a restart would be too
                self.refused.add(name)
                self.say(f"{name} refused to start ({_exit_status(process.returncode)}, pid {process.pid}): "
                         f"not restarting; see {self.log_file(name)}")
                continue
            if now - self._started_at[name] >= self.stable_after:
                self._next_delay[name] = self.backoff  # it had been fine for a while
            delay = self._next_delay[name]
            self._next_delay[name] = min(delay * 2, self.max_backoff)
            self._restart_at[name] = now + delay
            self.say(f"{name} exited unexpectedly ({_exit_status(process.returncode)}, pid {process.pid}); "
                     f"log: {self.log_file(name)}; restarting in {delay:g} s")
        for name, when in list(self._restart_at.items()):
            if now >= when:
                del self._restart_at[name]
                self.restarts[name] += 1
                process = self._spawn(name)
                self.say(f"{name} restarted (pid {process.pid}, restart {self.restarts[name]})")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM every process, SIGKILL its session after `timeout`; restarts nothing more."""
        self._stopping = True
        self._restart_at.clear()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _service_commands() -> dict[str, list[str]]:
    return {name: [sys.executable, "-m", f"{name}.main"] for name in SERVICES}


@contextlib.contextmanager
def _supervised(env: dict[str, str], log_dir: Path) -> Iterator[Supervisor]:
    supervisor = Supervisor(_service_commands(), log_dir, env)
    try:
        supervisor.start()
        yield supervisor
    finally:
        supervisor.stop()


@contextlib.contextmanager
def _services(env: dict[str, str], log_dir: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """The four services, not restarted (for the benchmarks); stopped on exit."""
    with _supervised(env, log_dir) as supervisor:
        yield supervisor.processes


POSTGRES_PASSWORDS = "postgres.toml"


def postgres_passwords(config_dir: Path) -> dict[str, str]:
    """Each service's PostgreSQL password: made on the first run, then read from
    `<config_dir>/postgres.toml` (mode 0600), so the roles keep theirs across runs."""
    path = config_dir / POSTGRES_PASSWORDS
    kept = tomllib.loads(path.read_text()) if path.exists() else {}
    passwords = {name: str(kept.get(name) or secrets.token_urlsafe(24)) for name in SERVICES}
    if passwords != kept:
        config_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("# The PostgreSQL password of each service's role (tweespoor_<service>),\n"
                      "# made by `tweespoor run --store postgres`.\n"
                      + "".join(f'{name} = "{passwords[name]}"\n' for name in SERVICES))
    path.chmod(0o600)
    return passwords


def provision_postgres(postgres: discovery.PostgresEndpoint, config_dir: Path) -> dict[str, str]:
    """`<SERVICE>_DATABASE_URL` for each service: its own role, owning only its own database.

    On a server whose admin role (DATABASE_URL) may not create roles, the services share
    that role as before, with a warning saying what to do."""
    from psycopg import errors

    passwords = postgres_passwords(config_dir)
    try:
        urls = {f"{name.upper()}_DATABASE_URL": provision_service(postgres.server_url, name, passwords[name])
                for name in SERVICES}
        print(f"PostgreSQL roles: one per service, passwords in {config_dir / POSTGRES_PASSWORDS}", flush=True)
        return urls
    except errors.InsufficientPrivilege:
        print("Warning: the role of DATABASE_URL may not create roles, so every service connects as that "
              "role and could read the others' stores: give it CREATEROLE and CREATEDB, or make each "
              "role tweespoor_<service> and its database yourself (see the README).", flush=True)
    urls = {}
    for name in SERVICES:
        postgres.create_database(f"tweespoor_{name}")
        urls[f"{name.upper()}_DATABASE_URL"] = postgres.url(f"tweespoor_{name}")
    return urls


class _StopRequest:
    """The signal handler of `run`: the first Ctrl-C or SIGTERM asks for a stop, and while
    starting also interrupts the start (the stack of started things then unwinds)."""

    def __init__(self) -> None:
        self.requested = False
        self.interrupts = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            return  # already stopping: let the stop finish
        self.requested = True
        if self.interrupts:
            raise KeyboardInterrupt


def run(*, data_dir: Path, store: str = "sqlite", demo: bool = True) -> int:
    """Runs everything until Ctrl-C or SIGTERM; returns the exit code."""
    stop = _StopRequest()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)

    try:
        with contextlib.ExitStack() as stack:
            try:
                _start_and_supervise(stack, stop, data_dir, log_dir, store, demo)
            finally:
                stop.interrupts = False  # what the stack stops is stopped without interruption
                print("Stopping…", flush=True)
    except KeyboardInterrupt:  # Ctrl-C while starting
        print("Stopped.", flush=True)
        return 130
    print("Stopped.", flush=True)
    return 0


def _start_and_supervise(stack: contextlib.ExitStack, stop: _StopRequest, data_dir: Path, log_dir: Path,
                         store: str, demo: bool) -> None:
    # The broker keeps its data beside the stores: a second run resumes the same topics
    # and offsets (unless KAFKA_BOOTSTRAP_SERVERS names another broker).
    broker = stack.enter_context(discovery.kafka(data_dir=data_dir / "kafka", log_file=log_dir / "kafka.log"))
    kept = f", data in {broker.controller.data_dir}" if broker.controller else ""
    print(f"Kafka: {broker.bootstrap_servers} ({broker.kind}{kept})", flush=True)
    asyncio.run(ensure_topics(broker.bootstrap_servers))
    credentials, tokens = write_credentials(data_dir / "config")
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
               TWEESPOOR_DATA_DIR=str(data_dir), TWEESPOOR_CREDENTIALS_FILE=str(credentials))
    # One clock for the four services (and every restart of one): the same epoch for all.
    clock = demo_clock(data_dir, env)
    env.update(clock.env())
    if clock.simulated and clock.speed > 1:  # timers that look often enough to see the days pass
        env.setdefault("COACHING_SCHEDULER_SECONDS", "5")
        env.setdefault("INTAKE_TIMER_SECONDS", "5")
    print(f"Clock: {describe_clock(clock)}; kept in {data_dir / CLOCK_FILE}", flush=True)
    if store == "postgres":
        postgres = stack.enter_context(discovery.postgres())
        print(f"PostgreSQL: {postgres.kind}", flush=True)
        env.update(provision_postgres(postgres, data_dir / "config"))
    urls = {n: f"http://127.0.0.1:{env.get(f'{n.upper()}_PORT', DEFAULT_PORTS[n])}"
            for n in SERVICES}
    for name in ("intake", "trajectory", "coaching"):  # audit reads and BSN lookups
        env.setdefault(f"REPORTING_{name.upper()}_URL", urls[name])
    supervisor = stack.enter_context(_supervised(env, log_dir))
    for name in SERVICES:  # one that fails to start at all fails the run, with its log
        _wait_healthy(urls[name], supervisor.processes[name], log_file=supervisor.log_file(name))
    if demo:
        posted, already = post_demo_referrals(urls["intake"], tokens)
        note = f"; {already} were open already" if already else ""
        print(f"Demo: {posted + already} referrals posted to intake (idempotently{note}).", flush=True)
    print("\nTweespoor is running:", flush=True)
    for name in SERVICES:
        print(f"  {name:<11} {urls[name]}/docs", flush=True)
    print(f"  dashboard   {urls['reporting']}/dashboard (sign in with a *-staff token)", flush=True)
    print(f"  logs        {log_dir}", flush=True)
    print(f"  tokens      {credentials.parent / 'tokens.toml'} (one per client application)",
          flush=True)
    print(f"  secrets     {credentials.parent / WEBHOOK_SECRETS} (each provider's webhook signing secret)",
          flush=True)
    print(f"  today       {describe_clock(clock)}", flush=True)
    print("Press Ctrl-C to stop. A service that dies is restarted.", flush=True)
    stop.interrupts = False
    kept_at = time.monotonic()
    try:
        while not stop.requested:
            supervisor.poll()
            time.sleep(0.2)
            if time.monotonic() - kept_at >= 2.0:  # how far the simulated time got, for the next run
                keep_clock(data_dir / CLOCK_FILE, clock)
                kept_at = time.monotonic()
    finally:
        keep_clock(data_dir / CLOCK_FILE, clock)
