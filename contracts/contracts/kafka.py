"""Kafka clients as every service uses them, and the idempotent creation of topics.

Every Kafka client of the code is made here (a layout test holds to it), so that how
clients connect is decided in one place: `KafkaSecurity` (from the environment) gives the
security protocol, SASL credentials and CA of every client; `Replication` the replication
factor and `min.insync.replicas` topics are created with; consumers take their session
timeout from `TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS`. The `TWEESPOOR_*` names are ours on
purpose: the apache/kafka image turns `KAFKA_*` variables into broker properties, and the
client ones below (`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_CAFILE`) are only
read by clients.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context

from contracts.topics import TOPICS, Topic

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
DEFAULT_SESSION_TIMEOUT_MS = 10_000  # aiokafka's own default
# Every environment variable read here (the SASL ones also as <SERVICE>_KAFKA_SASL_*).
SECURITY_ENV = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
                "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE")
SERVICE_ENV = ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE")
CLIENT_ENV = (*SECURITY_ENV, "TWEESPOOR_KAFKA_REPLICATION_FACTOR", "TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS",
              "TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS")


class KafkaSettingsError(ValueError):
    """A Kafka client setting of the environment that cannot be used as it is."""


# -- settings from the environment ------------------------------------------------------


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client connects: `KAFKA_SECURITY_PROTOCOL` (PLAINTEXT, the default; SSL,
    SASL_SSL, SASL_PLAINTEXT), `KAFKA_SASL_MECHANISM` (SCRAM-SHA-512 unless set),
    `KAFKA_SASL_USERNAME` and `KAFKA_SASL_PASSWORD` or `KAFKA_SASL_PASSWORD_FILE`,
    `KAFKA_SSL_CAFILE` (the system's CAs when unset). With a service, its own
    `<SERVICE>_KAFKA_SASL_USERNAME` / `_PASSWORD` / `_PASSWORD_FILE` come first, so that
    one environment can start every service, each as its own principal."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise KafkaSettingsError(f"KAFKA_SECURITY_PROTOCOL={self.protocol!r}: expected one of {PROTOCOLS}")
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise KafkaSettingsError(f"KAFKA_SASL_MECHANISM={self.mechanism!r}: expected one of {MECHANISMS}")
            if not self.username or not self.password:
                raise KafkaSettingsError(f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs KAFKA_SASL_USERNAME "
                                         "and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)")
        if self.cafile is not None and not self.tls:
            raise KafkaSettingsError(f"KAFKA_SSL_CAFILE is set but KAFKA_SECURITY_PROTOCOL={self.protocol} uses no TLS")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol.endswith("SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, service: str | None = None) -> KafkaSecurity:
        env = os.environ if env is None else env
        own = f"{service.upper()}_" if service else None

        def get(name: str) -> str | None:
            for key in ((own + name,) if own and name in SERVICE_ENV else ()) + (name,):
                if value := env.get(key, "").strip():
                    return value
            return None

        def secret() -> str | None:
            # The service's own password (or file) before the shared one.
            for prefix in ((own,) if own else ()) + ("",):
                if value := env.get(f"{prefix}KAFKA_SASL_PASSWORD", ""):
                    return value
                if path := env.get(f"{prefix}KAFKA_SASL_PASSWORD_FILE", "").strip():
                    try:
                        return Path(path).read_text().rstrip("\r\n")
                    except OSError as error:
                        raise KafkaSettingsError(f"{prefix}KAFKA_SASL_PASSWORD_FILE={path}: {error}") from error
            return None

        protocol = (get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
        sasl = protocol.startswith("SASL_")
        return cls(
            protocol=protocol,
            mechanism=(get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").upper() if sasl else None,
            username=get("KAFKA_SASL_USERNAME") if sasl else None,
            password=secret() if sasl else None,
            cafile=get("KAFKA_SSL_CAFILE"),
        )

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client takes for this."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = _ssl_context(self.cafile)
        if self.sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
    """One context per CA file for the process (hostnames are checked)."""
    return create_ssl_context(cafile=cafile) if cafile else ssl.create_default_context()


def _positive(env: Mapping[str, str], name: str) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise KafkaSettingsError(f"{name}={text!r}: expected a whole number") from None
    if value < 1:
        raise KafkaSettingsError(f"{name}={value}: expected 1 or more")
    return value


@dataclass(frozen=True)
class Replication:
    """`TWEESPOOR_KAFKA_REPLICATION_FACTOR` (default: what the cluster allows, up to 3) and
    `TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS` (default: 2, or fewer when the factor is)."""

    factor: int | None = None
    min_insync: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Replication:
        env = os.environ if env is None else env
        return cls(_positive(env, "TWEESPOOR_KAFKA_REPLICATION_FACTOR"),
                   _positive(env, "TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS"))

    def resolve(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) on a cluster of `brokers` brokers."""
        factor = self.factor or max(1, min(3, brokers))
        if factor > brokers:
            raise KafkaSettingsError(f"TWEESPOOR_KAFKA_REPLICATION_FACTOR={factor}, but the cluster has "
                                     f"{brokers} broker{'s' if brokers != 1 else ''}")
        min_insync = self.min_insync or min(2, factor)
        if min_insync > factor:
            raise KafkaSettingsError(f"TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS={min_insync} is more than the "
                                     f"replication factor {factor}: no write could succeed")
        return factor, min_insync


def session_timeout_ms(env: Mapping[str, str] | None = None) -> int:
    """`TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS`: how long a group member may be silent before
    its partitions go to another (the broker allows 6000 and up by default)."""
    return _positive(os.environ if env is None else env, "TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS") \
        or DEFAULT_SESSION_TIMEOUT_MS


# -- the clients ------------------------------------------------------------------------


def _security(security: KafkaSecurity | None) -> dict[str, Any]:
    return (security or KafkaSecurity.from_env()).client_options()


def producer(bootstrap_servers: str, client_id: str, *, security: KafkaSecurity | None = None,
             **options: Any) -> AIOKafkaProducer:
    """Idempotent producer, acks from all in-sync replicas: a send that returned is durable."""
    settings = {"acks": "all", "enable_idempotence": True, "linger_ms": 5, **options}
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id,
                            **settings, **_security(security))


def plain_producer(bootstrap_servers: str, client_id: str, *, security: KafkaSecurity | None = None,
                   **options: Any) -> AIOKafkaProducer:
    """A producer that is not idempotent (acks from all in-sync replicas): one refused send
    leaves no sequence number behind that breaks the next."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all",
                            **options, **_security(security))


def consumer(bootstrap_servers: str, group: str, *, security: KafkaSecurity | None = None) -> AIOKafkaConsumer:
    """A group member that commits only what it applied; the store's tracking is the truth."""
    heartbeat = min(3000, session_timeout_ms() // 3)
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=500,
        session_timeout_ms=session_timeout_ms(),
        heartbeat_interval_ms=heartbeat,
        **_security(security),
    )


def reader(bootstrap_servers: str, *, security: KafkaSecurity | None = None, **options: Any) -> AIOKafkaConsumer:
    """A consumer that is assigned its partitions (no group unless `group_id` is given, to
    commit to): committed records only, nothing committed by itself."""
    settings = {"enable_auto_commit": False, "isolation_level": "read_committed", **options}
    return AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, **settings, **_security(security))


def admin(bootstrap_servers: str, client_id: str = "tweespoor-admin", *,
          security: KafkaSecurity | None = None) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id=client_id, **_security(security))


async def read_from_start(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """Assigns every partition of `topics` (no group), from offset 0; returns where each
    ends now, so a reader knows when it has read everything that was there."""
    partitions = []
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        if not found:  # a topic created a moment ago: the client's metadata is behind
            await consumer._client.force_metadata_update()
            found = consumer.partitions_for_topic(topic) or set()
        partitions += [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return await consumer.end_offsets(partitions)


async def ensure_topics(bootstrap_servers: str, topics: tuple[Topic, ...] = TOPICS, *,
                        security: KafkaSecurity | None = None,
                        replication: Replication | None = None) -> list[str]:
    """Creates the topics that do not exist yet, with the replication factor and
    `min.insync.replicas` of `replication` (default: from the environment); returns the
    names it created."""
    client = admin(bootstrap_servers, "tweespoor-admin", security=security)
    await client.start()
    try:
        existing = set(await client.list_topics())
        missing = list({t.name: t for t in topics if t.name not in existing}.values())
        if not missing:
            return []
        brokers = len((await client.describe_cluster())["brokers"])
        factor, min_insync = (replication or Replication.from_env()).resolve(brokers)
        response = await client.create_topics(
            [
                NewTopic(t.name, num_partitions=t.partitions, replication_factor=factor,
                         topic_configs={"min.insync.replicas": str(min_insync), **t.config})
                for t in missing
            ]
        )
        created = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:  # another service won the race: fine
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        log.info("topics_created", extra={"topics": created, "replication_factor": factor,
                                          "min_insync_replicas": min_insync})
        return created
    finally:
        await client.close()
