"""Tamper evidence: every stored event carries the hash of the one before it in its
aggregate's stream, and its own hash over what it says.

Stored state becomes `HC1 | previous hash | own hash | state`, the own hash taken over
the originator id, version, topic, previous hash and state bytes. Verifying needs no key
and no decoding; an edited row, a removed event or a reordered one breaks the chain at
the first event that does not fit.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

MAGIC = b"HC1"
GENESIS = b"0" * 64
HEADER = len(MAGIC) + 128


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


class ChainedMapper(Mapper):
    """eventsourcing's mapper, with each stored event chained to its predecessor."""

    recorder: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: dict[tuple[Any, int], bytes] = {}  # chained in this process, maybe unsaved
        self._lock = threading.Lock()

    def attach(self, recorder: Any) -> None:
        self.recorder = recorder

    def _previous(self, originator_id: Any, version: int) -> bytes:
        if version <= 1:
            return GENESIS
        found = self.recorder.select_events(originator_id, gt=version - 2, lte=version - 1) \
            if self.recorder is not None else []
        if found:
            return unwrap(found[0])[1]
        with self._lock:  # saved in the same transaction as this one, a moment ago
            return self._pending.get((originator_id, version - 1), GENESIS)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        stored = super().to_stored_event(domain_event)
        previous = self._previous(stored.originator_id, stored.originator_version)
        own = _digest(stored.originator_id, stored.originator_version, stored.topic, previous,
                      stored.state)
        with self._lock:
            if len(self._pending) > 10_000:
                self._pending.clear()
            self._pending[(stored.originator_id, stored.originator_version)] = own
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic,
                           MAGIC + previous + own + stored.state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        _, _, state = unwrap(stored_event)
        return super().to_domain_event(StoredEvent(stored_event.originator_id,
                                                   stored_event.originator_version,
                                                   stored_event.topic, state))


@dataclass(frozen=True)
class ChainReport:
    """The verdict on one aggregate's stream: intact, or where it first breaks and why."""

    originator_id: str
    events: int
    broken_at: int | None = None  # the version of the first event that does not fit
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify(recorder: Any, originator_id: Any) -> ChainReport:
    """Walks one stream in order and names the first event that does not fit."""
    previous, expected_version = GENESIS, 1
    stored_events = recorder.select_events(originator_id)
    for stored in stored_events:
        version = stored.originator_version
        try:
            prev, own, state = unwrap(stored)
        except ValueError as error:
            return ChainReport(str(originator_id), len(stored_events), version, str(error))
        if version != expected_version:
            return ChainReport(str(originator_id), len(stored_events), version,
                               f"version {expected_version} is missing")
        if prev != previous:
            return ChainReport(str(originator_id), len(stored_events), version,
                               "does not follow the event before it")
        if _digest(stored.originator_id, version, stored.topic, prev, state) != own:
            return ChainReport(str(originator_id), len(stored_events), version,
                               "its content differs from what was recorded")
        previous, expected_version = own, version + 1
    return ChainReport(str(originator_id), len(stored_events))
