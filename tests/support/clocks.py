"""A business date a test sets and moves by hand."""

from __future__ import annotations

import datetime as dt


class Clock:
    def __init__(self, today: dt.date) -> None:
        self.today = today

    def __call__(self) -> dt.date:
        return self.today
