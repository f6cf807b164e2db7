"""The README's run command, end to end: Kafka and four service processes; a referral
posted to intake shows up in trajectory, coaching and reporting; SIGINT stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib

import httpx
import pytest

from infra.run import SERVICES, demo_referrals

pytestmark = [pytest.mark.kafka]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError("condition not met in time")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(params=["sqlite", "postgres"])
def running(request, bootstrap, tmp_path):
    ports = {name: free_port() for name in SERVICES}
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap,
               **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()})
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres")
        env["DATABASE_URL"] = postgres.url("postgres")
    # The services keep their own consumer groups; a fresh data directory (or fresh
    # databases) means their stores start empty, and counts are compared to a baseline.
    output = tmp_path / "run.out"
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "run", "--no-demo", "--data-dir", str(tmp_path / "run"),
         "--store", request.param],
        env=env, stdout=output.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        until(lambda: process.poll() is not None or all(port_open(p) for p in ports.values()),
              timeout=120)
        assert process.poll() is None, output.read_text()[-3000:]
        yield process, urls, ports, output
    finally:
        if process.poll() is None:
            # Ctrl-C first: the run stops the services it started in sessions of their own,
            # which a SIGKILL of the run alone would leave running.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_a_referral_reaches_every_service_and_ctrl_c_leaves_nothing_behind(running):
    process, urls, ports, output = running
    tokens = tomllib.loads((output.parent / "run" / "config" / "tokens.toml").read_text())
    auth = {"Authorization": f"Bearer {tokens['alkmaar-case-system']}"}
    before = httpx.get(f"{urls['reporting']}/event-counts", headers=auth).json()["per_type"]

    body = demo_referrals()[0]
    created = httpx.post(f"{urls['intake']}/referrals", json=body, timeout=10, headers=auth)
    assert created.status_code == 201, created.text
    trajectory_id = created.json()["trajectory_id"]

    # The demo's referrals fall in the tender's contract period, so a provider takes them on.
    assigned = until(lambda: (r := httpx.get(f"{urls['trajectory']}/trajectories/{trajectory_id}",
                                            headers=auth)).status_code == 200
                     and r.json()["assignments"])
    assert assigned[0]["provider"], assigned
    referred = "nl.reintegratie.referral.client-referred.v1"
    opened = "nl.reintegratie.trajectory.opened.v1"
    counts = until(lambda: (c := httpx.get(f"{urls['reporting']}/event-counts", headers=auth).json()["per_type"])
                   .get(opened, 0) > before.get(opened, 0) and c.get(referred, 0) > before.get(referred, 0) and c)
    assert counts[referred] == before.get(referred, 0) + 1
    assert counts[opened] == before.get(opened, 0) + 1
    followed = until(lambda: httpx.get(f"{urls['coaching']}/followed-trajectories",
                                       headers=auth).json()["total"])
    assert followed >= 1

    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    printed = output.read_text()
    assert process.returncode == 0, printed[-3000:]
    assert "Stopped." in printed
    assert not any(port_open(p) for p in ports.values())
    leftovers = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes left behind in the run's session"
