"""How a service process runs: HTTP API, outbox relay and inbox in one event loop.

One composition root per service builds its application and API and hands them here.
Every request and every consumed record runs in a W3C trace span and is written to the
service's processing log. SIGINT and SIGTERM stop the HTTP server first, then the relay
and inbox, then close the Kafka client and the store, so that nothing is left half done
or left running.

A service runs as any number of replicas on one PostgreSQL store: each serves HTTP and
its share of the consumed partitions, and the one holding the store's lease
(`contracts.lease`) does the work that must happen once. On SQLite a service is one
process (`contracts.storelock`): a second is refused and exits with code 78.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI

from contracts import kafka, storelock, tracing
from contracts.checkpoints import Checkpointer
from contracts.inbox import Inbox
from contracts.lease import Lease
from contracts.limits import max_body_bytes
from contracts.outbox import OutboxRelay, Translate
from contracts.processing import ProcessingLog
from contracts.service import ChainedEventStore
from contracts.topics import TOPICS, group_topics, retry_topic
from contracts.web import limits
from contracts.web.audit import install_audit
from contracts.web.health import readiness

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"intake": 8001, "trajectory": 8002, "coaching": 8003, "reporting": 8004}


@dataclass(frozen=True)
class Settings:
    """Where a service listens and what it talks to, from the environment.

    `KAFKA_BOOTSTRAP_SERVERS`; `<SERVICE>_DATABASE_URL` (default: an SQLite file under
    `TWEESPOOR_DATA_DIR`); `<SERVICE>_HOST` and `<SERVICE>_PORT`.
    """

    service: str
    bootstrap_servers: str
    database_url: str
    host: str
    port: int

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        prefix = service.upper()
        data_dir = env.get("TWEESPOOR_DATA_DIR", ".tweespoor")
        return cls(
            service=service,
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            database_url=env.get(f"{prefix}_DATABASE_URL", f"sqlite:///{data_dir}/{service}.db"),
            host=env.get(f"{prefix}_HOST", "127.0.0.1"),
            port=int(env.get(f"{prefix}_PORT", DEFAULT_PORTS[service])),
        )


class Store(Protocol):
    """What a service process needs of its store: the inbox target, and closing."""

    group: str

    def position(self, topic: str, partition: int) -> int | None: ...
    def apply(self, cloud_event: Any, topic: str, partition: int, offset: int) -> Any: ...
    def incarnation(self, topic: str, topic_id: str) -> int: ...
    def close(self) -> None: ...


@dataclass
class Service:
    """Everything one service process runs."""

    settings: Settings
    app: Store
    api: FastAPI
    publishes_to: str | None = None
    translate: Translate | None = None
    consumes_from: Sequence[str] = field(default_factory=tuple)
    # Other long-running work of the service that must happen once per store (a scheduler,
    # webhook deliveries, timers): run by the replica holding the store's lease, cancelled
    # when it loses it or stops.
    background: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    # Long-running work every replica does for itself: started with the process.
    per_replica: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    # With credentials, auditors can read the service's own events per trajectory.
    audit_credentials: Any = None
    # Where the service's processing log goes; by default beside its store.
    processing_log: ProcessingLog | None = None
    # This replica's claim on the once-per-store work, while it runs (`contracts.lease`).
    lease: Lease | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        system = f"tweespoor-{self.settings.service}"
        if self.processing_log is None:
            self.processing_log = ProcessingLog(self.settings.database_url)
        if self.audit_credentials is not None and self.translate is not None:
            install_audit(self.api, self.app, self.translate, system, self.audit_credentials,
                          self.processing_log)
        # The caller checked before the body is read, and bodies capped (<SERVICE>_MAX_BODY_BYTES).
        limits.install(self.api, max_body_bytes=max_body_bytes(self.settings.service))
        tracing.install(self.api, system=system, processing_log=self.processing_log)

    async def run(self, stop: asyncio.Event) -> None:
        """Runs the service until `stop` is set (or a worker dies, which it raises).

        Every replica serves HTTP, consumes its share of the partitions (the consumer group
        divides them) and follows the checkpoints; the work that must happen once per store
        -- the outbox relay, `background`, publishing checkpoints -- runs only in the
        replica that holds the store's lease (`contracts.lease`). An SQLite store serves
        one process: a second is refused with `StoreInUse` (`contracts.storelock`).
        """
        name = self.settings.service
        with storelock.exclusive(self.settings.database_url, name):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        name, bootstrap = self.settings.service, self.settings.bootstrap_servers
        ready = readiness(self.api)
        # The declared topics, and this group's own dead-letter and retry topics (a group
        # named otherwise than the declared ones, as in a test, has them too).
        group = getattr(self.app, "group", "") if self.consumes_from else ""
        security = kafka.KafkaSecurity.from_env(service=name)  # this service's principal
        await kafka.ensure_topics(bootstrap, TOPICS + (group_topics(group) if group else ()), security=security)
        producer = kafka.producer(bootstrap, f"tweespoor-{name}", security=security)
        await producer.start()
        lease = Lease(self.settings.database_url, service=name)
        leased: dict[str, Callable[[], Awaitable[None]]] = {}
        if self.publishes_to and self.translate:
            publishes_to, translate = self.publishes_to, self.translate

            def relay() -> Awaitable[None]:  # a fresh relay each time the lease is taken
                return OutboxRelay(app=self.app, translate=translate,  # type: ignore[arg-type]
                                   producer=producer, topic=publishes_to,
                                   system=f"tweespoor-{name}", readiness=ready).run()

            leased["relay"] = relay
        for job in self.background:
            leased[_job_name(job, leased)] = job
        workers: list[asyncio.Task[None]] = []
        per_replica = {f"inbox {group}"} if group else set()  # readiness entries of unleased work
        if self.consumes_from:
            inbox = Inbox(bootstrap_servers=bootstrap, topics=self.consumes_from,
                          target=self.app, producer=producer,
                          processing_log=self.processing_log, system=f"tweespoor-{name}",
                          retry_topic=retry_topic(self.app.group), readiness=ready, security=security)
            workers.append(asyncio.create_task(inbox.run(), name="inbox"))
        for job in self.per_replica:
            workers.append(asyncio.create_task(job(), name=_job_name(job, {})))
        checkpointer: Checkpointer | None = None
        if isinstance(getattr(self.app, "events", None), ChainedEventStore):
            # The heads of the store's hash chains, signed and published outside the store at
            # least every TWEESPOOR_CHECKPOINT_SECONDS (60); loads and the audit compare with them.
            # Every replica follows them; the holder of the lease publishes.
            checkpointer = Checkpointer.from_env(self.app, service=name, bootstrap_servers=bootstrap,
                                                 producer=producer, publish_when=lambda: lease.held)
            workers.append(asyncio.create_task(checkpointer.run(), name="checkpoints"))

        def lost() -> None:  # a standby is ready: what the leased work said no longer holds
            for component in ready.reasons:
                if component not in per_replica:
                    ready.progressing(component)

        if leased or checkpointer is not None:  # reporting has nothing to do once per store
            self.lease = self.api.state.lease = lease  # for operators: does this replica hold it?
            workers.append(asyncio.create_task(lease.hold(leased, on_loss=lost), name="lease"))
        server = _Server(uvicorn.Config(self.api, host=self.settings.host, port=self.settings.port,
                                        log_config=None, access_log=False))
        http = asyncio.create_task(server.serve(), name="http")
        log.info("service_started", extra={"service": name, "port": self.settings.port})
        try:
            done, _ = await asyncio.wait([http, asyncio.create_task(stop.wait()), *workers],
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in done:  # a worker that died is a reason to stop, loudly
                if task.done() and not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await http
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await producer.stop()
            self.app.close()
            if self.processing_log is not None:
                self.processing_log.close()
            log.info("service_stopped", extra={"service": name})


def _job_name(job: Callable[[], Awaitable[None]], taken: Mapping[str, object]) -> str:
    name = getattr(job, "__name__", "job")
    if name == "run" and (owner := getattr(job, "__self__", None)) is not None:
        name = type(owner).__name__.lower()  # scheduler.run -> "scheduler"
    while name in taken:
        name += "'"
    return name


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the service process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(service: Service) -> None:
    """Runs a service until SIGINT or SIGTERM."""
    configure_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.run(stop)

    try:
        asyncio.run(main())
    except storelock.StoreInUse as refused:  # configuration, not a crash: not to be restarted
        log.error("store_in_use", extra={"service": refused.service, "store": refused.path,
                                         "other_pid": refused.pid, "reason": str(refused)})
        raise SystemExit(storelock.EXIT_STORE_IN_USE) from None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: the event name and its fields (never personal data)."""

    _plain = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._plain})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
