"""Loading aggregates the use cases share: one that may not exist yet, one of a kind, and
the ids of those that recorded some event (read from the store's log)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from contracts.following import read_log

A = TypeVar("A")


def loaded_or_new(repository: Any, aggregate_id: uuid.UUID, new: Callable[[], A]) -> A:
    """The stored aggregate, else `new()` (not saved yet)."""
    try:
        return repository.get(aggregate_id)
    except AggregateNotFoundError:
        return new()


def loaded_if(repository: Any, aggregate_id: uuid.UUID, kind: type[A]) -> A | None:
    """The stored aggregate if there is one of `kind` with this id, else None."""
    try:
        found = repository.get(aggregate_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, kind) else None


def originators(store: Any, event_class: type) -> list[uuid.UUID]:
    """The aggregates that recorded an event of `event_class`, each once, in log order."""
    found = read_log(store, topics=[get_topic(event_class)])
    return list(dict.fromkeys(n.originator_id for n in found))
