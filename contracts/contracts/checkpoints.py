"""Signed checkpoints: every stream's head anchored outside the store.

The hash chain (`contracts.chain`) shows an edit, a removal or a reordering only to
someone who does not recompute it; whoever can write to the database can recompute it.
So, as Certificate Transparency's logs publish signed tree heads and ledger databases
hand out digests to be kept elsewhere, each service signs what its store holds at least
every `interval` seconds with a key that is not in the database, and publishes it to the
audit topic (`tweespoor.audit.checkpoints.v1`, kept forever):

    {"v": 1, "service": "trajectory", "store": <id of this store>, "time": ...,
     "from": <notification id>, "to": <notification id>,
     "previous": <log hash at from>, "log": <log hash at to>,
     "heads": [[<stream id>, <version>, <own hash>], ...],   # streams changed in (from, to]
     "broken": [[<stream id>, <version>, <why>], ...],        # found broken, not signed
     "key": <public key>}                                      # + "signature" beside it

- **Incremental.** A checkpoint covers the notifications recorded since the one before
  (at most `BATCH` each; a quiet store gives a heartbeat with no heads once an hour), so
  a store of a million events costs what was recorded in the last minute, not a million
  hashes.
- **The log hash** chains every notification (id, stream, version, own hash) in order:
  two checkpoints at the same position with different log hashes, or a store whose
  notifications no longer give a signed log hash (`verify_log`), show a whole stream or
  event removed or inserted, even one nobody loads.
- **The heads** let a load or the store audit compare a stream with its signed head at
  once: a chain recomputed consistently by someone with write access to the database no
  longer matches it (`ChainedEventStore`, `contracts.audit`).
- **Ed25519** (`cryptography`): auditors verify with the public key only; the private
  key comes from `<SERVICE>_CHECKPOINT_KEY_FILE`, `<SERVICE>_CHECKPOINT_KEY` or
  `TWEESPOOR_CHECKPOINT_KEY` (a base64 32-byte seed, or a PEM PKCS#8 key in the file).
  Without one a key file is made under `TWEESPOOR_DATA_DIR` (or beside an SQLite store),
  outside the database but on the same machine: for development only. Checkpoints are
  trusted when signed by the service's own key or one in `TWEESPOOR_CHECKPOINT_TRUSTED_KEYS`
  (comma-separated base64 public keys: the keys before a rotation).
- Only ids and hashes: no personal data on the topic or in the log lines.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from contracts.chain import GENESIS, Anchor, IntegrityViolation, checked
from contracts.topics import CHECKPOINTS

log = logging.getLogger(__name__)

VERSION = 1
BATCH = 1000  # notifications per checkpoint at most: a record stays far below Kafka's 1 MB
DEFAULT_INTERVAL = 60.0
# A store with nothing new keeps its last checkpoint, which still holds every head; only
# this often does it say so with a heartbeat. One a minute would be half a million records
# a year per service, each read again by every service at start.
DEFAULT_HEARTBEAT = 3600.0


# --- keys -------------------------------------------------------------------------------


def _seed(text: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the checkpoint key must be an Ed25519 key")
        return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    seed = base64.b64decode(text, validate=True)
    if len(seed) != 32:
        raise ValueError("the checkpoint key must be 32 bytes, base64")
    return seed


def load_key(service: str, env: dict[str, str] | None = None, *, ephemeral: bool = False) -> bytes:
    """The service's 32-byte Ed25519 seed, from outside the store (see the module doc)."""
    env = dict(os.environ if env is None else env)
    prefix = service.upper()
    if path := env.get(f"{prefix}_CHECKPOINT_KEY_FILE"):
        return _seed(Path(path).read_text())
    for name in (f"{prefix}_CHECKPOINT_KEY", "TWEESPOOR_CHECKPOINT_KEY"):
        if text := env.get(name):
            return _seed(text)
    if ephemeral:  # an in-memory store lives as long as the process: so may its key
        return os.urandom(32)
    directory = Path(env["TWEESPOOR_DATA_DIR"]) if env.get("TWEESPOOR_DATA_DIR") else (
        Path(env["SQLITE_DBNAME"]).parent if env.get("SQLITE_DBNAME") else Path(".tweespoor"))
    path = directory / "keys" / f"{service}-checkpoint.key"
    if not path.exists():  # written whole, then linked: two processes starting at once agree
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as file:
            file.write(base64.b64encode(os.urandom(32)).decode())
        try:
            os.link(draft, path)
            log.warning("checkpoint_key_generated", extra={"service": service, "path": str(path)})
        except FileExistsError:
            pass
        finally:
            os.unlink(draft)
    return _seed(path.read_text())


def public_key(seed: bytes) -> str:
    """The base64 raw public key of a seed: what auditors verify checkpoints with."""
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def trusted_keys(seed: bytes, env: dict[str, str] | None = None) -> frozenset[str]:
    env = dict(os.environ if env is None else env)
    others = [k.strip() for k in env.get("TWEESPOOR_CHECKPOINT_TRUSTED_KEYS", "").split(",") if k.strip()]
    return frozenset([public_key(seed), *others])


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(seed: bytes, body: dict[str, Any]) -> dict[str, Any]:
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(canonical(body))
    return {"checkpoint": body, "signature": base64.b64encode(signature).decode()}


def verified(record: dict[str, Any], trusted: Iterable[str]) -> dict[str, Any] | None:
    """The checkpoint of a signed record, if one of the trusted keys signed it."""
    try:
        body, signature = record["checkpoint"], base64.b64decode(record["signature"])
        key = body["key"]
        if key not in set(trusted):
            return None
        Ed25519PublicKey.from_public_bytes(base64.b64decode(key)).verify(signature, canonical(body))
        return body
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return None


# --- what is signed -----------------------------------------------------------------------


def log_step(previous: str, notification_id: int, originator_id: Any, version: int, own: bytes) -> str:
    h = hashlib.sha256(previous.encode())
    for part in (str(notification_id), str(originator_id), str(version)):
        h.update(b"\x1f" + part.encode())
    h.update(b"\x1f" + own)
    return h.hexdigest()


def store_identity(recorder: Any) -> str | None:
    """This store, told from another of the same service: a hash of its first event (none
    while it is empty). A store rebuilt or restored from elsewhere starts another history."""
    first = recorder.select_notifications(0, 1)
    if not first:
        return None
    n = first[0]
    own = bytes(n.state)[67:131]
    return hashlib.sha256(f"{n.id}|{n.originator_id}|{n.originator_version}|".encode() + own).hexdigest()[:32]


@dataclass
class CheckpointIndex:
    """The signed heads of one store's streams and its signed log positions, as read from
    the audit topic (and as this process signed them): what loads and the audit compare
    with. Thread-safe; kept in memory, rebuilt from the topic at start."""

    service: str
    store: str | None = None
    heads: dict[str, Anchor] = field(default_factory=dict)
    logs: dict[int, str] = field(default_factory=dict)  # position -> signed log hash
    latest: dict[str, Any] | None = None
    caught_up: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def anchor(self, originator_id: Any) -> Anchor | None:
        return self.heads.get(str(originator_id))

    def position(self) -> tuple[int, str]:
        """The furthest signed position and its log hash (0 and genesis before any)."""
        with self._lock:
            if not self.logs:
                return 0, GENESIS.decode()
            to = max(self.logs)
            return to, self.logs[to]

    def observe(self, body: dict[str, Any]) -> bool:
        """Takes in one verified checkpoint of this store; False if it contradicts another."""
        if body.get("service") != self.service or body.get("store") != self.store:
            return True
        where = f"{self.service}/{body['to']}/{body['time']}"
        with self._lock:
            agreed = self.logs.setdefault(body["to"], body["log"]) == body["log"]
            earlier = self.logs.get(body["from"])
            if earlier is not None and earlier != body["previous"]:
                agreed = False
            if agreed:
                for originator_id, version, head in body["heads"]:
                    known = self.heads.get(originator_id)
                    if known is None or version >= known.version:
                        self.heads[originator_id] = Anchor(version, head, where)
                if self.latest is None or body["to"] >= self.latest["to"]:
                    self.latest = body
        if not agreed:
            log.error("integrity_violation", extra={"service": self.service, "stream": "notification-log",
                                                    "version": body["to"],
                                                    "reason": "two signed checkpoints disagree on the log"})
        return agreed


def verify_log(recorder: Any, index: CheckpointIndex, batch: int = 5000) -> dict[str, Any]:
    """Recomputes the log hash over the whole notification log and compares it at every
    signed position: the full store audit (it reads every event once)."""
    signed = sorted(dict(index.logs).items())
    position, value, at, first_bad = 0, GENESIS.decode(), 0, None

    def passed(until: int) -> None:  # compare every signed position before `until`
        nonlocal at, first_bad
        while at < len(signed) and signed[at][0] < until:
            if signed[at][0] > 0 and signed[at][1] != value and first_bad is None:
                first_bad = signed[at][0]
            at += 1

    while first_bad is None and (page := recorder.select_notifications(position, batch, inclusive_of_start=False)):
        for n in page:
            passed(n.id)
            value = log_step(value, n.id, n.originator_id, n.originator_version, bytes(n.state)[67:131])
            position = n.id
    passed(position + 1)
    if first_bad is None and at < len(signed):
        first_bad = signed[at][0]  # signed events beyond the end of the log: removed
    return {"signed_positions": len(signed), "log_position": position,
            "intact": first_bad is None, "broken_at": first_bad}


# --- the publisher ------------------------------------------------------------------------


class Checkpointer:
    """Publishes this store's checkpoints at least every `interval` seconds and follows the
    audit topic, so that the index holds every signed head (its own and those of other
    processes on the same store)."""

    def __init__(self, app: Any, *, service: str, bootstrap_servers: str, producer: Any,
                 seed: bytes, trusted: Iterable[str] = (), topic: str = CHECKPOINTS,
                 interval: float = DEFAULT_INTERVAL, heartbeat: float = DEFAULT_HEARTBEAT,
                 publish_when: Callable[[], bool] = lambda: True) -> None:
        self.app, self.service, self.bootstrap_servers = app, service, bootstrap_servers
        # Every replica of a service follows the topic; only the one holding the store's
        # lease (`contracts.lease`) publishes.
        self.publish_when = publish_when
        self.producer, self.seed, self.topic, self.interval = producer, seed, topic, interval
        self.heartbeat = max(heartbeat, interval)
        self.key = public_key(seed)
        self.trusted = frozenset([self.key, *trusted])
        self.index = CheckpointIndex(service)

    @classmethod
    def from_env(cls, app: Any, *, service: str, bootstrap_servers: str, producer: Any,
                 env: dict[str, str] | None = None, **kwargs: Any) -> Checkpointer:
        env = dict(os.environ if env is None else env)
        store_env = dict(getattr(app, "env", {}) or {})
        seed = load_key(service, {**store_env, **env})
        interval = float(env.get("TWEESPOOR_CHECKPOINT_SECONDS", DEFAULT_INTERVAL))
        heartbeat = float(env.get("TWEESPOOR_CHECKPOINT_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT))
        return cls(app, service=service, bootstrap_servers=bootstrap_servers, producer=producer, seed=seed,
                   trusted=trusted_keys(seed, env), interval=interval, heartbeat=heartbeat, **kwargs)

    async def run(self) -> None:
        while True:
            try:
                await self._run()
            except asyncio.CancelledError:
                raise
            except Exception:  # broker or store away: try again, the next checkpoint covers it
                log.exception("checkpoints_failed", extra={"service": self.service})
                await asyncio.sleep(min(self.interval, 5.0))

    async def _run(self) -> None:
        from aiokafka import TopicPartition

        from contracts import kafka

        while self.index.store is None:
            self.index.store = await asyncio.to_thread(store_identity, self.app.recorder)
            if self.index.store is None:
                await asyncio.sleep(min(self.interval, 1.0))
        self.app.anchors = self.index
        consumer = kafka.reader(self.bootstrap_servers,
                                security=kafka.KafkaSecurity.from_env(service=self.service))
        await consumer.start()
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                await self._read(consumer, 500)
            self.index.caught_up = True
            loop = asyncio.get_running_loop()
            due, last = loop.time(), -self.heartbeat
            while True:
                if loop.time() >= due:
                    if self.publish_when() and (loop.time() - last >= self.heartbeat
                                                or await asyncio.to_thread(self.behind)):
                        await self.publish()
                        last = loop.time()
                    due = loop.time() + self.interval
                await self._read(consumer, max(10, int(min(due - loop.time(), 1.0) * 1000)))
        finally:
            await consumer.stop()

    async def _read(self, consumer: Any, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=500)
        for records in batches.values():
            for record in records:
                try:
                    signed = json.loads(record.value)
                except (TypeError, ValueError):
                    continue
                body = verified(signed, self.trusted) if isinstance(signed, dict) else None
                if body is None:
                    if isinstance(signed, dict) and signed.get("checkpoint", {}).get("service") == self.service:
                        log.warning("checkpoint_untrusted", extra={"service": self.service, "offset": record.offset})
                    continue
                self.index.observe(body)

    def behind(self) -> bool:
        """Whether the store holds notifications no checkpoint covers yet."""
        return (self.app.recorder.max_notification_id() or 0) > self.index.position()[0]

    async def publish(self) -> int:
        """Signs and publishes what was recorded since the last signed position (a
        heartbeat when nothing was); returns how many checkpoints it published."""
        published = 0
        while True:
            signed = await asyncio.to_thread(self.next_checkpoint)
            await (await self.producer.send(self.topic, json.dumps(signed).encode(),
                                            key=self.service.encode()))
            self.index.observe(signed["checkpoint"])
            published += 1
            if signed["checkpoint"]["events"] < BATCH:
                return published

    def next_checkpoint(self) -> dict[str, Any]:
        """The next signed checkpoint: the next `BATCH` notifications at most."""
        start, value = self.index.position()
        previous = value
        notifications = self.app.recorder.select_notifications(start, BATCH, inclusive_of_start=False)
        heads: dict[str, tuple[int, str]] = {}
        broken: dict[str, tuple[int, str]] = {}
        position = start
        for n in notifications:
            stream = str(n.originator_id)
            own = bytes(n.state)[67:131]
            try:
                prev, own, _ = checked(n)
                known = heads.get(stream) or ((a.version, a.head) if (a := self.index.anchor(stream)) else None)
                if known is not None and n.originator_version == known[0] + 1 and prev.decode() != known[1]:
                    raise IntegrityViolation(stream, n.originator_version, "does not follow the event before it")
                if stream not in broken:
                    heads[stream] = (n.originator_version, own.decode())
            except IntegrityViolation as violation:  # never signed: the audit names it
                heads.pop(stream, None)
                broken[stream] = (n.originator_version, violation.reason)
                log.error("integrity_violation", extra={"service": self.service, "stream": stream,
                                                        "version": n.originator_version, "reason": violation.reason})
            value = log_step(value, n.id, n.originator_id, n.originator_version, own)
            position = n.id
        body = {"v": VERSION, "service": self.service, "store": self.index.store,
                "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                "from": start, "to": position, "previous": previous, "log": value,
                "events": len(notifications),
                "heads": sorted([s, v, h] for s, (v, h) in heads.items()),
                "broken": sorted([s, v, r] for s, (v, r) in broken.items()), "key": self.key}
        return sign(self.seed, body)

