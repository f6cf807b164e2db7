"""The installation's clock (`contracts.clock`, issue 15 item 4): the wall clock unless
set; a set clock shows START at the real instant ANCHOR and runs SPEED times as fast;
processes started at different moments with the same settings agree."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest

from contracts.clock import ANCHOR_ENV, SPEED_ENV, START_ENV, InstallationClock, installation_clock

ANCHOR = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


class Real:
    """The real time, as the test says."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_no_setting_is_the_wall_clock_in_amsterdam():
    real = Real(dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC))  # already 1 January in Amsterdam
    clock = InstallationClock.from_env({}, real=real)
    assert not clock.simulated and clock.env() == {}
    assert clock.now() == real.now
    assert clock.today() == dt.date(2027, 1, 1)
    assert installation_clock({}).now() - dt.datetime.now(dt.UTC) < dt.timedelta(seconds=5)


def test_the_start_is_shown_at_the_anchor_and_time_runs_at_the_speed():
    real = Real(ANCHOR)
    clock = InstallationClock.from_env({START_ENV: "2008-02-01", ANCHOR_ENV: "2026-12-04T10:00:00Z",
                                        SPEED_ENV: "1440"}, real=real)
    assert clock.simulated
    assert clock.now() == dt.datetime(2008, 1, 31, 23, 0, tzinfo=dt.UTC)  # midnight in Amsterdam
    assert clock.today() == dt.date(2008, 2, 1)
    real.now = ANCHOR + dt.timedelta(minutes=1)  # a day per real minute
    assert clock.today() == dt.date(2008, 2, 2)
    real.now = ANCHOR + dt.timedelta(minutes=14, seconds=30)  # two weeks and a half day on
    assert clock.today() == dt.date(2008, 2, 15)
    assert clock.now() == dt.datetime(2008, 2, 15, 11, 0, tzinfo=dt.UTC)


def test_real_speed_a_held_clock_and_a_start_with_a_time():
    real = Real(ANCHOR + dt.timedelta(hours=30))
    same_pace = InstallationClock.from_env({START_ENV: "2008-02-01T09:00", ANCHOR_ENV: ANCHOR.isoformat()},
                                           real=real)
    assert same_pace.now() == dt.datetime(2008, 2, 2, 14, 0, tzinfo=dt.UTC)  # 09:00 CET + 30 h
    held = InstallationClock.from_env({START_ENV: "2008-02-01T09:00+01:00", ANCHOR_ENV: ANCHOR.isoformat(),
                                       SPEED_ENV: "0"}, real=real)
    assert held.now() == dt.datetime(2008, 2, 1, 8, 0, tzinfo=dt.UTC) and held.today() == dt.date(2008, 2, 1)


def test_its_settings_give_the_same_clock_again():
    clock = InstallationClock.starting(dt.date(2008, 2, 1), speed=1440, real=Real(ANCHOR))
    again = InstallationClock.from_env(clock.env(), real=Real(ANCHOR))
    assert again == clock and again.now() == clock.now()
    assert clock.env() == {START_ENV: "2008-01-31T23:00:00+00:00", ANCHOR_ENV: "2026-12-04T10:00:00+00:00",
                           SPEED_ENV: "1440"}


@pytest.mark.parametrize("env,names", [
    ({START_ENV: "2008-02-01"}, ANCHOR_ENV),  # each process would take its own start as anchor
    ({ANCHOR_ENV: "2026-12-04T10:00:00Z"}, START_ENV),
    ({SPEED_ENV: "60"}, START_ENV),
    ({START_ENV: "1 February 2008", ANCHOR_ENV: "2026-12-04T10:00:00Z"}, START_ENV),
    ({START_ENV: "2008-02-01", ANCHOR_ENV: "yesterday"}, ANCHOR_ENV),
    ({START_ENV: "2008-02-01", ANCHOR_ENV: "2026-12-04T10:00:00Z", SPEED_ENV: "fast"}, SPEED_ENV),
    ({START_ENV: "2008-02-01", ANCHOR_ENV: "2026-12-04T10:00:00Z", SPEED_ENV: "-1"}, SPEED_ENV),
])
def test_a_setting_that_cannot_be_right_is_refused_by_name(env, names):
    with pytest.raises(ValueError, match=names):
        InstallationClock.from_env(env)


PROBE = """
import datetime as dt, json
from contracts.clock import installation_clock
clock = installation_clock()
real = dt.datetime.now(dt.UTC)
print(json.dumps({"today": clock.today().isoformat(), "now": clock.now().isoformat(), "real": real.isoformat()}))
"""


def test_processes_started_at_different_moments_agree():
    """Three processes, started a second apart, with the settings `tweespoor run` gives its
    services: they read the same simulated date, and their simulated times differ by what
    the real time between them is worth at the speed."""
    anchor = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=90)  # a day and a half ago, simulated
    env = {**InstallationClock(start=dt.datetime(2008, 1, 31, 23, tzinfo=dt.UTC), anchor=anchor,
                               speed=1440).env()}
    seen = []
    for _ in range(3):
        probe = subprocess.run([sys.executable, "-c", PROBE], env={"PATH": "/usr/bin:/bin", **env},
                               capture_output=True, text=True, check=True, timeout=60)
        seen.append(json.loads(probe.stdout))
        time.sleep(1)
    assert {s["today"] for s in seen} == {"2008-02-02"}
    for s in seen:  # each one's simulated time is the one formula of its real time
        real, now = dt.datetime.fromisoformat(s["real"]), dt.datetime.fromisoformat(s["now"])
        expected = dt.datetime(2008, 1, 31, 23, tzinfo=dt.UTC) + (real - anchor) * 1440
        assert abs(now - expected) < dt.timedelta(minutes=2)  # the instants between the two reads
    first, last = (dt.datetime.fromisoformat(seen[i]["now"]) for i in (0, -1))
    assert dt.timedelta(minutes=40) <= last - first <= dt.timedelta(hours=12)  # ≥ 2 s real at 1440×
