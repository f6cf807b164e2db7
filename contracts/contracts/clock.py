"""One clock for the whole installation: the business "today" of every service.

Production runs on the wall clock. A training or demo installation can set its own
time, the same for every process of every service, from three settings in the
environment (read once, where each service is wired, in its `main.build()`):

    TWEESPOOR_CLOCK_START    the installation's date-time at the real instant ANCHOR
                             (`2008-02-01`, `2008-02-01T09:00`; without an offset it is
                             Amsterdam time; a date alone is its midnight there)
    TWEESPOOR_CLOCK_ANCHOR   that real instant, an ISO timestamp in UTC, written once by
                             whoever sets the installation up (`tweespoor run` keeps it in
                             its data directory); required with START
    TWEESPOOR_CLOCK_SPEED    simulated seconds per real second (default 1; 1440 is a day
                             per minute; 0 holds the installation on START)

The installation's now is `START + (real now - ANCHOR) × SPEED`: a pure function of the
real time and the three settings, so every process given the same settings agrees on
it, whenever it started and however often it was restarted. No setting is the wall
clock.

This clock gives the *valid* time of the business: the date a check-in falls due, the
day from which an LBU refusal counts as an unknown destination, the "not in the future"
checks, a report's default period. The *recorded* time of every stored event (the
`timestamp` eventsourcing stamps on it, the `recorded_at` of histories, the access and
processing logs, webhook signatures and retries) stays real wall-clock time: what
happened when in the world is the business's, when the system learnt it is the
machine's, and an audit needs both apart.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

START_ENV = "TWEESPOOR_CLOCK_START"
ANCHOR_ENV = "TWEESPOOR_CLOCK_ANCHOR"
SPEED_ENV = "TWEESPOOR_CLOCK_SPEED"
ENV_NAMES = (START_ENV, ANCHOR_ENV, SPEED_ENV)

try:
    AMSTERDAM: dt.tzinfo = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # a slim image without tzdata: a day's edge off by an hour or two
    AMSTERDAM = dt.UTC


def wall_now() -> dt.datetime:
    """The real time, in UTC."""
    return dt.datetime.now(dt.UTC)


def parse_start(text: str) -> dt.datetime:
    """A simulated date-time: a date is its midnight in Amsterdam, a date-time without an
    offset is Amsterdam time."""
    text = text.strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{START_ENV} must be an ISO date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=AMSTERDAM)
    return moment.astimezone(dt.UTC)


def parse_anchor(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{ANCHOR_ENV} must be an ISO timestamp (UTC)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


@dataclass(frozen=True)
class InstallationClock:
    """The installation's time: the wall clock (`start` None), or `start` at the real
    instant `anchor`, running `speed` times as fast. `real` is the wall clock (a test
    gives another)."""

    start: dt.datetime | None = None
    anchor: dt.datetime | None = None
    speed: float = 1.0
    real: Callable[[], dt.datetime] = field(default=wall_now, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.start is None:
            if self.anchor is not None or self.speed != 1.0:
                raise ValueError(f"{ANCHOR_ENV} and {SPEED_ENV} need {START_ENV}")
            return
        if self.anchor is None:
            raise ValueError(f"{START_ENV} needs {ANCHOR_ENV}: the real instant it corresponds to, "
                             "the same for every process")
        if not self.speed >= 0 or self.speed == float("inf"):
            raise ValueError(f"{SPEED_ENV} must be a number of 0 or more")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 real: Callable[[], dt.datetime] = wall_now) -> InstallationClock:
        env = os.environ if env is None else env
        start, anchor, speed = (env.get(name, "").strip() for name in ENV_NAMES)
        if not start and not anchor and not speed:
            return cls(real=real)
        try:
            rate = float(speed) if speed else 1.0
        except ValueError:
            raise ValueError(f"{SPEED_ENV} must be a number") from None
        return cls(start=parse_start(start) if start else None,
                   anchor=parse_anchor(anchor) if anchor else None, speed=rate, real=real)

    @classmethod
    def starting(cls, start: dt.datetime | dt.date, *, speed: float = 1.0,
                 real: Callable[[], dt.datetime] = wall_now) -> InstallationClock:
        """A clock that shows `start` now (an installation being set up)."""
        moment = parse_start(start.isoformat()) if not isinstance(start, dt.datetime) or start.tzinfo is None \
            else start.astimezone(dt.UTC)
        return cls(start=moment, anchor=real(), speed=speed, real=real)

    @property
    def simulated(self) -> bool:
        return self.start is not None

    def now(self) -> dt.datetime:
        """The installation's date-time, in UTC."""
        real = self.real()
        if self.start is None or self.anchor is None:
            return real
        return self.start + (real - self.anchor) * self.speed

    def today(self) -> dt.date:
        """The installation's calendar date in the Netherlands: a check-in due on Monday
        is due on Monday in Amsterdam, not in UTC."""
        return self.now().astimezone(AMSTERDAM).date()

    def env(self) -> dict[str, str]:
        """The settings that give every process this clock (nothing for the wall clock)."""
        if self.start is None or self.anchor is None:
            return {}
        return {START_ENV: self.start.isoformat(), ANCHOR_ENV: self.anchor.isoformat(),
                SPEED_ENV: f"{self.speed:g}"}

    def describe(self) -> str:
        if self.start is None:
            return "the wall clock"
        pace = "held still" if self.speed == 0 else "real time" if self.speed == 1 \
            else f"{self.speed:g}× real time"
        return f"simulated, {pace}"


def installation_clock(env: Mapping[str, str] | None = None) -> InstallationClock:
    """The clock the environment sets (the wall clock when it sets none)."""
    return InstallationClock.from_env(env)
