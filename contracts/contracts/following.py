"""Following a service's own log: one way to read it, one way to act on it once.

A follower (the assignment desk, the webhook dispatcher) keeps its position in the log as
a tracking record under its own name, and records what it decides about a notification
in one transaction with the notification's tracking record. So each notification is
decided once, even when the follower runs twice or in two processes: the second loses on
the tracking record (or on an aggregate the first moved on), drops its round and reads on
from the winner's position next time.

A view (`LogView`) is an in-memory index of some event classes, caught up from the log
before each use, so that a restart rebuilds it and another process's events show up in it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.utils import get_topic

# What follows from one notification (and the domain event it holds): the aggregates to
# record with the follower's position; none when nothing does.
Decide = Callable[[Notification, Any], Sequence[Any]]
PAGE = 500  # notifications read at once by `read_log`


def read_log(app: Any, *, topics: Sequence[str] = (), after: int = 0, until: int | None = None,
             page: int = PAGE) -> Iterator[Notification]:
    """The notifications after `after` up to and including `until` (the log's end when
    None), of the given topics (all when none), in log order, a page at a time."""
    position = after
    while until is None or position < until:
        notifications = app.recorder.select_notifications(position, page, stop=until, topics=topics,
                                                          inclusive_of_start=False)
        if not notifications:
            return
        yield from notifications
        position = notifications[-1].id


class LogFollower:
    """Decides on the notifications after its position in tracking `name`, each once.

    `decide` runs under `lock` (the service's write lock), or outside it when
    `decide_under_lock` is false and only the recording needs it; `before` sees each page
    first (to catch up what deciding reads). Recording goes through `app.record` every
    time, never a method kept from before."""

    def __init__(self, app: Any, name: str, decide: Decide, *,
                 lock: AbstractContextManager[Any] | None = None, decide_under_lock: bool = True,
                 before: Callable[[Sequence[Notification]], None] | None = None) -> None:
        self.app, self.name, self._decide = app, name, decide
        self._lock: AbstractContextManager[Any] = lock if lock is not None else nullcontext()
        self._decide_under_lock = decide_under_lock
        self._before = before

    def position(self) -> int:
        return self.app.recorder.max_tracking_id(self.name) or 0

    def run_once(self, limit: int) -> int:
        """Decides on up to `limit` notifications; returns how many it read (a round that
        read fewer than `limit` has caught up), 0 when another process won the race."""
        notifications = self.app.recorder.select_notifications(self.position(), limit,
                                                               inclusive_of_start=False)
        if notifications and self._before is not None:
            self._before(notifications)
        skipped = None  # the last notification nothing followed from, not yet tracked
        for notification in notifications:
            domain_event = self.app.mapper.to_domain_event(notification)
            deciding = self._lock if self._decide_under_lock else nullcontext()
            recording = nullcontext() if self._decide_under_lock else self._lock
            with deciding:
                changed = self._decide(notification, domain_event)
                if not changed:
                    skipped = notification.id
                    continue
                processing = ProcessingEvent[uuid.UUID](tracking=Tracking(self.name, notification.id))
                processing.collect_events(*changed)
                try:
                    with recording:
                        self.app.record(processing)
                except IntegrityError:  # another process decided it, or an aggregate moved on
                    return 0
            skipped = None
        if skipped is not None:
            try:
                self.app.recorder.insert_tracking(Tracking(self.name, skipped))
            except IntegrityError:
                return 0
        return len(notifications)


class LogView:
    """Applies the events of `event_classes` to `apply`, in log order, up to a position
    in the log; each view owns its lock, so two threads never apply an event twice."""

    def __init__(self, app: Any, event_classes: Sequence[type], apply: Callable[[Any], None]) -> None:
        self.app, self._apply = app, apply
        self.topics = [get_topic(cls) for cls in event_classes]
        self.position = 0
        self._lock = threading.Lock()

    def catch_up(self, until: int | None = None) -> None:
        """Applies the view's events up to notification `until` (the log's last when None),
        one already in the log (the store numbers notifications in commit order, so none
        before it can still appear). The next search starts there, not at the view's last
        event of its own kinds, which may lie far back (or at the log's start)."""
        with self._lock:
            if until is None:
                until = self.app.recorder.max_notification_id() or 0
            for notification in read_log(self.app, topics=self.topics, after=self.position, until=until):
                self._apply(self.app.mapper.to_domain_event(notification))
                self.position = notification.id
            self.position = max(self.position, until)
