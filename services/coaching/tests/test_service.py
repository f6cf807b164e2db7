"""The composition root and the scheduler as a background job of the service process."""

import asyncio
import datetime as dt

from contracts.runtime import Settings
from coaching.application import CoachingApplication
from coaching.main import build
from coaching.scheduler import Scheduler
from infra.demo import write_credentials
from services.coaching.tests.support import Clock, Feed, Trajectory, kinds, published


def test_the_service_runs_the_scheduler_beside_http_relay_and_inbox(tmp_path):
    credentials, _ = write_credentials(tmp_path / "config")
    settings = Settings.from_env("coaching", {"TWEESPOOR_DATA_DIR": str(tmp_path)})
    service = build(settings, {"TWEESPOOR_CREDENTIALS_FILE": str(credentials),
                               "COACHING_CHECK_IN_WEEKS_ALKMAAR": "2,26,52",
                               "COACHING_SCHEDULER_SECONDS": "5"})
    try:
        assert len(service.background) == 1
        assert service.app.policies.of("alkmaar").check_in_weeks == (2, 26, 52)
        assert service.app.policies.of("bergen").check_in_weeks == (2, 6, 13, 26, 39, 52)
        assert service.consumes_from == ("tweespoor.trajectory.events.v1", "tweespoor.intake.events.v1")
        assert service.publishes_to == "tweespoor.coaching.events.v1"
    finally:
        service.app.close()


async def test_the_scheduler_loop_records_what_fell_due_and_keeps_going():
    clock = Clock(dt.date(2027, 1, 4))
    app = CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    trajectory = Trajectory()
    Feed(app)(trajectory.opened(), trajectory.placed(dt.date(2027, 1, 4)))
    clock.set(dt.date(2027, 1, 27))
    task = asyncio.create_task(Scheduler(app, interval_seconds=0.01).run())
    try:
        for _ in range(200):
            if "CheckInOverdue" in kinds(published(app)):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert kinds(published(app)) == ["CoachingStarted", "CheckInOverdue"]
