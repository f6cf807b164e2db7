"""Today's date, as the coaching rules see it: injectable, so tests walk a year at will.

A running service takes it from the installation's clock (`contracts.clock`), wired in
`coaching.main.build()`: the wall clock in production, a simulated one in a demo."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from contracts.clock import InstallationClock

Clock = Callable[[], dt.date]

_WALL = InstallationClock()


def today_in_amsterdam() -> dt.date:
    """Due dates are Dutch calendar dates: a check-in due on Monday is due on Monday in
    the Netherlands, not in UTC."""
    return _WALL.today()
