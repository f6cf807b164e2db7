"""Who caused an event, and in which trace: stamped on the event when it is stored.

Events are facts, and who caused one is known only when the command is given, so the
stamp is written with the stored event (inside its hashed state, so the chain covers it)
and read back by the outbox relay and the audit, never edited later. An actor is
`user:<credential id>`, `provider:<provider id>` or `service:<system>` (the service on its
own: a policy reacting to an event, a timer) — credential names, never personal data.

HTTP command routes name their actor by depending on `contracts.web.actors.acting(<their
auth dependency>)`, which calls `act_as`; what is recorded without one is the service's
own doing.
"""

from __future__ import annotations

import contextvars
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from contracts import tracing
from contracts.access import Principal
from contracts.chain import MAGIC, unwrap

STAMP = "__stamp__"  # the key in a stored event's state; no domain attribute is named so

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("tweespoor_actor", default=None)


def actor_of(caller: Any) -> str:
    """The actor a caller records as: a provider by its provider id, anyone else by the id
    of their credential. Takes a `Principal` or a verified webhook message."""
    principal: Principal = getattr(caller, "provider", None) if not isinstance(caller, Principal) else caller
    if not isinstance(principal, Principal):
        raise TypeError(f"no principal in {type(caller).__name__}")
    if principal.kind == "provider":
        return f"provider:{principal.provider or principal.id}"
    return f"user:{principal.id}"


def current_actor() -> str | None:
    return _actor.get()


def act_as(caller: Any) -> None:
    """What is recorded from here on in this context names `caller` (see `actor_of`)."""
    _actor.set(actor_of(caller))


class StampedMapper(Mapper):
    """eventsourcing's mapper, writing the actor and the trace into every stored event's
    state and taking them out again on the way back, so aggregates never see them."""

    default_actor: str = "service:tweespoor"

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        span = tracing.current() or tracing.fresh()
        stamp = {"actor": current_actor() or self.default_actor, "traceparent": span.traceparent}
        # As Mapper.to_stored_event, with the stamp added to the state before encoding.
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        event_state[STAMP] = stamp
        state = self.transcoder.encode(event_state)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=get_topic(type(domain_event)), state=state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        vars(domain_event).pop(STAMP, None)
        return domain_event

    def stamp(self, stored_event: Any) -> dict[str, str]:
        """The actor and `traceparent` a stored event (or notification) was recorded with;
        empty for events recorded before stamps existed."""
        state = bytes(stored_event.state)
        if state.startswith(MAGIC):
            state = unwrap(stored_event)[2]
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return dict(self.transcoder.decode(state).get(STAMP) or {})


def stamp_of(mapper: Any, stored_event: Any) -> dict[str, str]:
    """A stored event's stamp, whatever the mapper (none from an unstamped one)."""
    return mapper.stamp(stored_event) if isinstance(mapper, StampedMapper) else {}
