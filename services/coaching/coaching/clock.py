"""Today's date, as the coaching rules see it: injectable, so tests walk a year at will."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], dt.date]

try:
    _AMSTERDAM: dt.tzinfo = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # a slim image without tzdata: a day's edge off by an hour or two
    _AMSTERDAM = dt.UTC


def today_in_amsterdam() -> dt.date:
    """Due dates are Dutch calendar dates: a check-in due on Monday is due on Monday in
    the Netherlands, not in UTC."""
    return dt.datetime.now(_AMSTERDAM).date()
