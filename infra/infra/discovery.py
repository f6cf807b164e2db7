"""Where to find Kafka and PostgreSQL, in one rule for tests, the CLI and development.

An address in an environment variable first; otherwise testcontainers when a Docker engine
answers; otherwise the local server that infra/ starts. When none can be had this fails
with what to install: it never skips silently.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from infra.kafka import LocalKafka, cache_dir, free_port, local_broker
from infra.postgres import INSTALL_HINT, LocalPostgres, create_database, database_url, ensure_installed
from infra.versions import KAFKA_VERSION, POSTGRES_MAJOR

log = logging.getLogger(__name__)

Kind = Literal["env", "testcontainers", "local"]
KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
POSTGRES_ENV = "DATABASE_URL"
KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
POSTGRES_IMAGE = f"postgres:{POSTGRES_MAJOR}"


@dataclass(frozen=True)
class KafkaEndpoint:
    """A reachable Kafka broker, how it was found, and the LocalKafka when it is local."""

    bootstrap_servers: str
    kind: Kind
    controller: LocalKafka | None = None


@dataclass(frozen=True)
class PostgresEndpoint:
    """A reachable PostgreSQL server; `url(db)` names a database on it."""

    server_url: str  # a database the role may connect to, for admin statements
    kind: Kind
    controller: LocalPostgres | None = None

    def url(self, dbname: str) -> str:
        return database_url(self.server_url, dbname)

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; True if it was created."""
        return create_database(self.server_url, name)


def docker_available(timeout: float = 2.0) -> bool:
    """True when testcontainers is installed and a Docker engine answers a ping in time."""
    try:
        import docker
        import testcontainers  # noqa: F401
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means: no usable engine
        return False


def _import_first(*paths: str) -> Any:
    """`module:attr` from the first path that imports (testcontainers moved its modules)."""
    import importlib

    for path in paths:
        module, _, attr = path.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {paths} could be imported")


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    # testcontainers' KafkaContainer (4.15) drives Confluent's image and rejects the
    # "4.1.2" tag in with_kraft(); the official image is configured by KAFKA_* variables
    # instead. The host port equals the container port so the advertised address works.
    DockerContainer = _import_first("testcontainers.core.container:DockerContainer")
    LogMessageWaitStrategy = _import_first("testcontainers.core.wait_strategies:LogMessageWaitStrategy")
    port = free_port()
    container = DockerContainer(KAFKA_IMAGE).with_bind_ports(port, port)
    host = container.get_docker_client().host()
    for key, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://localhost:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_NUM_PARTITIONS": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }.items():
        container.with_env(key, value)
    container.waiting_for(LogMessageWaitStrategy("Kafka Server started"))
    with container:
        yield f"{host}:{port}"


def _local_kafka_possible() -> bool:
    """True when java is there, and the jars are cached or Maven can fetch them."""
    cached = (cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib" / ".complete").exists()
    return shutil.which("java") is not None and (cached or shutil.which("mvn") is not None)


@contextlib.contextmanager
def kafka(data_dir: Path | None = None, log_file: Path | None = None) -> Iterator[KafkaEndpoint]:
    """Yield a Kafka broker: $KAFKA_BOOTSTRAP_SERVERS, a container, or a LocalKafka.

    Without `data_dir` the local broker's data is temporary and removed when it stops.
    With one (what `tweespoor run` asks for), the local broker keeps its data, cluster id
    and log there and is preferred to a container, whose data would be lost: a later call
    with the same `data_dir` resumes the same topics and offsets.
    """
    if address := os.environ.get(KAFKA_ENV):
        yield KafkaEndpoint(address, "env")
        return
    keep = data_dir is not None and _local_kafka_possible()
    if not keep and docker_available():
        if data_dir is not None:
            log.warning("no Java or Maven for the local Kafka broker: using Docker, whose data "
                        "is not kept in %s", data_dir)
        log.info("starting Kafka in Docker (%s)", KAFKA_IMAGE)
        with _kafka_container() as address:
            yield KafkaEndpoint(address, "testcontainers")
        return
    broker = LocalKafka(data_dir=data_dir, log_file=log_file)
    try:
        broker.start()
    except (RuntimeError, OSError) as exc:
        broker.close()
        raise RuntimeError(
            f"no Kafka broker could be had: set {KAFKA_ENV}, run a Docker engine (with the "
            f"tweespoor-infra[docker] extra), or install Java 17 and Maven for the local one.\n{exc}"
        ) from exc
    try:
        yield KafkaEndpoint(broker.bootstrap_servers, "local", broker)
    finally:
        broker.close()  # removes the data dir only when it was a temporary one


@contextlib.contextmanager
def postgres() -> Iterator[PostgresEndpoint]:
    """Yield a PostgreSQL server: $DATABASE_URL, a container, or a LocalPostgres."""
    if url := os.environ.get(POSTGRES_ENV):
        if not url.startswith(("postgresql://", "postgres://")):
            raise RuntimeError(f"{POSTGRES_ENV} must be a postgresql:// URL")  # not echoed: may hold a password
        yield PostgresEndpoint(url, "env")
        return
    if docker_available():
        PostgresContainer: Callable[..., Any] = _import_first(
            "testcontainers.community.postgres:PostgresContainer",
            "testcontainers.postgres:PostgresContainer",
        )
        log.info("starting PostgreSQL in Docker (%s)", POSTGRES_IMAGE)
        with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
            yield PostgresEndpoint(container.get_connection_url(), "testcontainers")
        return
    server = LocalPostgres()
    try:
        server.bin_dir = ensure_installed()
        server.start()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        server.close()
        raise RuntimeError(
            f"no PostgreSQL server could be had: {INSTALL_HINT}, or run a Docker engine.\n{exc}"
        ) from exc
    try:
        yield PostgresEndpoint(server.url("postgres"), "local", server)
    finally:
        server.close()


def broker_version(bootstrap: KafkaEndpoint | str) -> str:
    """Best effort: the pinned version for brokers infra/ started, else "unknown"."""
    if isinstance(bootstrap, KafkaEndpoint):
        known = bootstrap.kind in ("local", "testcontainers")
    else:
        known = local_broker(bootstrap) is not None
    return KAFKA_VERSION if known else "unknown"
