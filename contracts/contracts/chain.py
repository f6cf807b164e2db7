"""Tamper evidence: every stored event carries the hash of the one before it in its
aggregate's stream, and its own hash over what it says.

Stored state becomes `HC1 | previous hash | own hash | state`, the own hash taken over
the originator id, version, topic, previous hash and state bytes. Verifying needs no key
and no decoding; an edited row, a removed event or a reordered one breaks the chain at
the first event that does not fit.

Three checks, from cheap to strong:

- every stored event decoded anywhere (a load, the relay, the desk) is checked against
  its own hash (`ChainedMapper.to_domain_event`): an edit that did not recompute it;
- every aggregate loaded through the event store is walked from its first event, each
  linked to the one before (`walk`, used by `contracts.service`): a removed, reordered or
  inserted event, or a recomputed one whose successor was not;
- the head of every stream is signed outside the store every minute
  (`contracts.checkpoints`) and compared with what is loaded or audited: a chain that
  someone with write access recomputed consistently up to its head.

Snapshots are state derived from the events, which the chain does not cover; they are
sealed with a key kept outside the store (HMAC over the snapshot and the hash of the
event it was taken at) and one that does not open is never used.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import CanSnapshotAggregate
from eventsourcing.persistence import Mapper, StoredEvent

MAGIC = b"HC1"
SEALED = b"HS1"  # a snapshot: the hash of the event it was taken at, and a keyed seal
GENESIS = b"0" * 64
HEADER = len(MAGIC) + 128


class IntegrityViolation(Exception):
    """Stored state that does not match its hash chain, its seal or its signed
    checkpoint. Names the service, the stream and the version only (never content)."""

    def __init__(self, stream: Any, version: int | None, reason: str, service: str | None = None) -> None:
        super().__init__(f"stream {stream} version {version}: {reason}")
        self.stream, self.version, self.reason, self.service = str(stream), version, reason, service


@dataclass(frozen=True)
class Anchor:
    """A stream's head as a signed checkpoint has it: the version and its own hash."""

    version: int
    head: str  # hex
    checkpoint: str = ""  # which checkpoint said so (service/position/time), for the audit


def _digest(originator_id: Any, version: int, topic: str, previous: bytes, state: bytes) -> bytes:
    h = hashlib.sha256()
    for part in (str(originator_id).encode(), str(version).encode(), topic.encode(), previous):
        h.update(part)
        h.update(b"\x1f")
    h.update(state)
    return h.hexdigest().encode()


def unwrap(stored: StoredEvent) -> tuple[bytes, bytes, bytes]:
    """(previous hash, own hash, state) of a chained stored event."""
    raw = bytes(stored.state)
    if not raw.startswith(MAGIC) or len(raw) < HEADER:
        raise ValueError("stored event carries no hash chain")
    return raw[3:67], raw[67:131], raw[HEADER:]


def checked(stored: StoredEvent) -> tuple[bytes, bytes, bytes]:
    """`unwrap`, and the own hash recomputed: an edited row raises `IntegrityViolation`."""
    try:
        prev, own, state = unwrap(stored)
    except ValueError as error:
        raise IntegrityViolation(stored.originator_id, stored.originator_version, str(error)) from None
    if not hmac.compare_digest(_digest(stored.originator_id, stored.originator_version, stored.topic,
                                       prev, state), own):
        raise IntegrityViolation(stored.originator_id, stored.originator_version,
                                 "its content differs from what was recorded")
    return prev, own, state


def walk(stored_events: Iterable[StoredEvent], *, originator_id: Any, after: tuple[int, bytes] | None = None,
         anchor: Anchor | None = None, complete: bool = True) -> Iterator[StoredEvent]:
    """Yields the stored events of one stream in order, each checked against its own hash
    and linked to the one before; `after` is (version, own hash) of the event just before
    the first (none: the stream starts at version 1). `anchor` is the signed head: the
    event at its version must have its hash, and when the whole stream is read
    (`complete`) it must be there. Raises `IntegrityViolation` at the first that fails."""
    version, previous = after if after is not None else (0, GENESIS)
    for stored in stored_events:
        prev, own, _ = checked(stored)
        if stored.originator_version != version + 1:
            raise IntegrityViolation(originator_id, stored.originator_version, f"version {version + 1} is missing")
        if not hmac.compare_digest(prev, previous):
            raise IntegrityViolation(originator_id, stored.originator_version, "does not follow the event before it")
        if anchor is not None and stored.originator_version == anchor.version \
                and not hmac.compare_digest(own, anchor.head.encode()):
            raise IntegrityViolation(originator_id, anchor.version,
                                     "differs from the head a signed checkpoint holds")
        version, previous = stored.originator_version, own
        yield stored
    if complete and anchor is not None and version < anchor.version:
        raise IntegrityViolation(originator_id, version + 1,
                                 f"events up to version {anchor.version} were signed and are missing")


def seal_key(secret: bytes) -> bytes:
    """The key snapshots are sealed with, derived from the service's checkpoint key."""
    return hashlib.sha256(b"tweespoor-snapshot-seal\x1f" + secret).digest()


def _seal(key: bytes, stored: StoredEvent, at: bytes, state: bytes) -> bytes:
    message = b"\x1f".join((str(stored.originator_id).encode(), str(stored.originator_version).encode(),
                            stored.topic.encode(), at, state))
    return hmac.new(key, message, hashlib.sha256).hexdigest().encode()


class ChainedMapper(Mapper):
    """eventsourcing's mapper, with each stored event chained to its predecessor."""

    recorder: Any = None
    seal: bytes | None = None  # the snapshot key (`seal_key`); without it snapshots are not used

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # What this thread chained in the save it is mapping, maybe not stored yet. Per
        # thread: two threads saving the same new aggregate at once must each chain onto
        # their own events, not onto the other's (the loser's save then fails as a whole).
        self._local = threading.local()

    @property
    def _pending(self) -> dict[tuple[Any, int], bytes]:
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = {}
        return pending

    def attach(self, recorder: Any) -> None:
        self.recorder = recorder

    def _previous(self, originator_id: Any, version: int) -> bytes:
        if version <= 1:
            return GENESIS
        found = self.recorder.select_events(originator_id, gt=version - 2, lte=version - 1) \
            if self.recorder is not None else []
        if found:
            return unwrap(found[0])[1]
        return self._pending.get((originator_id, version - 1), GENESIS)  # mapped in this save

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        if isinstance(domain_event, CanSnapshotAggregate):
            return self._sealed(stored)
        previous = self._previous(stored.originator_id, stored.originator_version)
        own = _digest(stored.originator_id, stored.originator_version, stored.topic, previous,
                      stored.state)
        pending = self._pending
        if len(pending) > 10_000:
            pending.clear()
        pending[(stored.originator_id, stored.originator_version)] = own
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                           MAGIC + previous + own + stored.state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if bytes(stored_event.state[:3]) == SEALED:
            _, state = self.open_snapshot(stored_event)
        else:
            _, _, state = checked(stored_event)
        return super().to_domain_event(StoredEvent(stored_event.originator_id,
                                                   stored_event.originator_version,
                                                   stored_event.topic, state))

    def _sealed(self, stored: StoredEvent) -> StoredEvent:
        """A snapshot, bound to the own hash of the event it was taken at and sealed."""
        found = self.recorder.select_events(stored.originator_id, gt=stored.originator_version - 1,
                                            lte=stored.originator_version) if self.recorder is not None else []
        at = unwrap(found[0])[1] if found else self._pending.get(
            (stored.originator_id, stored.originator_version), GENESIS)
        seal = _seal(self.seal, stored, at, stored.state) if self.seal else b"0" * 64
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                           SEALED + at + seal + stored.state)

    def open_snapshot(self, stored: StoredEvent) -> tuple[bytes, bytes]:
        """(own hash of the event it was taken at, state) of a sealed snapshot; one whose
        seal does not open (or with no key to open it) raises `IntegrityViolation`."""
        raw = bytes(stored.state)
        at, seal, state = raw[3:67], raw[67:131], raw[HEADER:]
        if not raw.startswith(SEALED) or self.seal is None \
                or not hmac.compare_digest(_seal(self.seal, stored, at, state), seal):
            raise IntegrityViolation(stored.originator_id, stored.originator_version,
                                     "the snapshot's seal does not open")
        return at, state


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one aggregate's stream: intact, or where it first breaks and why."""

    originator_id: str
    events: int
    broken_at: int | None = None  # the version of the first event that does not fit
    reason: str | None = None
    anchor: Anchor | None = None  # the signed checkpoint's head it was compared with

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(recorder: Any, originator_id: Any, anchor: Anchor | None = None) -> ChainReport:
    """Walks one stream in order and names the first event that does not fit (and, given
    the signed checkpoint's head, whether the stream still has it)."""
    stored_events = recorder.select_events(originator_id)
    try:
        for _ in walk(stored_events, originator_id=originator_id, anchor=anchor):
            pass
    except IntegrityViolation as violation:
        return ChainReport(str(originator_id), len(stored_events), violation.version, violation.reason, anchor)
    return ChainReport(str(originator_id), len(stored_events), anchor=anchor)
