"""`tweespoor run`'s installation clock (issue 15, item 4): the demo runs in the tender's
period, a simulated day per real minute; a second run on the data directory continues the
same simulated time; and the four services built with the run's environment all take
"today" from that one clock (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts.clock import ANCHOR_ENV, SPEED_ENV, START_ENV, InstallationClock
from contracts.runtime import Settings
from infra.demo import write_credentials
from infra.run import CLOCK_FILE, DEMO_CLOCK_SPEED, DEMO_DAY, SERVICES, demo_clock, demo_referrals, keep_clock

REAL = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)


class Real:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_first_run_starts_on_the_demo_day_a_day_per_minute_and_keeps_its_epoch(tmp_path):
    real = Real(REAL)
    clock = demo_clock(tmp_path, {}, real=real)
    assert (clock.today(), clock.speed) == (DEMO_DAY, DEMO_CLOCK_SPEED) == (dt.date(2008, 2, 1), 1440)
    kept = json.loads((tmp_path / CLOCK_FILE).read_text())
    assert dt.datetime.fromisoformat(kept["anchor"]) == REAL and kept["speed"] == 1440
    real.now = REAL + dt.timedelta(minutes=14)  # check-in 1 of a plan started on the demo day is due
    assert clock.today() == dt.date(2008, 2, 15)


def test_a_second_run_continues_where_the_first_stopped_not_where_the_real_time_would_put_it(tmp_path):
    real = Real(REAL)
    first = demo_clock(tmp_path, {}, real=real)
    real.now = REAL + dt.timedelta(minutes=3, seconds=30)
    keep_clock(tmp_path / CLOCK_FILE, first)  # as the run does while it runs and when it stops
    assert first.today() == dt.date(2008, 2, 4)

    real.now = REAL + dt.timedelta(hours=10)  # the next morning: 600 simulated days later…
    second = demo_clock(tmp_path, {}, real=real)
    assert second.today() == dt.date(2008, 2, 4)  # …but the demo goes on where it was
    real.now += dt.timedelta(minutes=1)
    assert second.today() == dt.date(2008, 2, 5)


def test_the_environment_may_set_the_clock_instead(tmp_path):
    real = Real(REAL)
    given = {START_ENV: "2007-06-01", ANCHOR_ENV: "2026-12-04T09:00:00+00:00", SPEED_ENV: "60"}
    clock = demo_clock(tmp_path, given, real=real)
    assert clock.env() == InstallationClock.from_env(given).env()
    assert clock.today() == dt.date(2007, 6, 3)  # an hour at 60× is two and a half days
    started = demo_clock(tmp_path, {START_ENV: "2007-06-01", SPEED_ENV: "1"}, real=real)
    assert (started.today(), started.speed, started.anchor) == (dt.date(2007, 6, 1), 1.0, REAL)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_services_built_with_the_run_s_environment_share_its_clock(tmp_path, database_url, monkeypatch):
    """What each service's `main.build()` wires from the environment `tweespoor run` gives
    its processes: coaching's due dates and scheduler, intake's LBU timer and date checks,
    trajectory's "lies in the future", reporting's today — one clock, not the machine's."""
    import reporting.main

    from coaching.main import build as coaching
    from intake.main import build as intake
    from trajectory.main import build as trajectory

    credentials, tokens = write_credentials(tmp_path / "config")
    anchor = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=150)  # two and a half simulated days ago
    clock_env = InstallationClock(start=dt.datetime(2008, 1, 31, 23, tzinfo=dt.UTC), anchor=anchor,
                                  speed=DEMO_CLOCK_SPEED).env()
    env = {"TWEESPOOR_CREDENTIALS_FILE": str(credentials), "INTAKE_PSEUDONYM_KEY": "run-clock", **clock_env}
    today = dt.date(2008, 2, 3)

    seen: dict[str, Any] = {}
    original = reporting.main.create_api
    monkeypatch.setattr(reporting.main, "create_api",
                        lambda *a, **kw: seen.setdefault("reporting", kw["today"]) and original(*a, **kw))
    services = {}
    for name, build in {"intake": intake, "trajectory": trajectory, "coaching": coaching,
                        "reporting": reporting.main.build}.items():
        settings = Settings.from_env(name, {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}",
                                            f"{name.upper()}_DATABASE_URL": database_url(name)})
        services[name] = build(settings, env)
    try:
        assert sorted(services) == sorted(SERVICES)
        assert services["coaching"].app.clock() == today
        assert services["intake"].app.clock() == today
        assert services["trajectory"].app.today() == today
        assert seen["reporting"]() == today

        # Intake's "not in the future" is the installation's: a referral dated the simulated
        # tomorrow is refused by name, one of the simulated today taken.
        client = TestClient(services["intake"].api)
        headers = {"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}
        body = next(r for r in demo_referrals() if r["municipality"] == "alkmaar")
        late = client.post("/referrals", json=body | {"referred_on": "2008-02-04"}, headers=headers)
        assert late.status_code == 422 and "referred_on" in late.text, late.text
        taken = client.post("/referrals", json=body | {"referred_on": "2008-02-03"}, headers=headers)
        assert taken.status_code == 201, taken.text
    finally:
        for service in services.values():
            service.app.close()
