"""A record whose handler fails every retry goes to the dead-letter topic, the consumer
goes on, and once the cause is fixed a re-drive applies it — once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from contracts import kafka
from contracts.deadletters import list_dead_letters, redrive
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import ClientReferred
from contracts.inbox import Inbox
from contracts.service import Outcome, store_env
from tests.support.kafka_tools import eventually, fresh_topics
from trajectory.application import TrajectoryApplication

pytestmark = [pytest.mark.kafka]


class Flaky:
    """A trajectory store whose handler fails for one trajectory until it is fixed."""

    def __init__(self, app: TrajectoryApplication, broken: uuid.UUID) -> None:
        self.app, self.broken, self.fixed = app, broken, False
        self.group = app.group

    def position(self, topic: str, partition: int) -> int | None:
        return self.app.position(topic, partition)

    def apply(self, cloud_event, topic, partition, offset) -> Outcome:
        if cloud_event.data.trajectory_id == self.broken and not self.fixed:
            raise RuntimeError("the handler's dependency is down")
        return self.app.apply(cloud_event, topic, partition, offset)


def referred(trajectory_id: uuid.UUID, n: int):
    data = ClientReferred(trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                          municipality="castricum", programme="social-activation", benefit="wao",
                          referred_on=dt.date(2026, 11, 1))
    return to_record(envelope(data, source=source_urn("castricum", "tweespoor-intake"), origin=f"r/{n}",
                              sequence=1, time=dt.datetime.now(dt.UTC)))


async def test_failing_handler_dead_letters_and_a_redrive_applies_it_once(bootstrap, tmp_path):
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topics = await fresh_topics(bootstrap, "intake", groups=(group,))
    app = TrajectoryApplication(store_env(f"sqlite:///{tmp_path}/t.db"))
    app.group = group
    broken, healthy = uuid.uuid4(), uuid.uuid4()
    target = Flaky(app, broken)
    producer = kafka.producer(bootstrap, "dlq-test")
    await producer.start()
    for n, trajectory_id in enumerate((broken, healthy)):
        key, value, headers = referred(trajectory_id, n)
        await producer.send_and_wait(topics["intake"], value, key=key, headers=headers)
    inbox = Inbox(bootstrap_servers=bootstrap, topics=[topics["intake"]], target=target,
                  producer=producer, retry_delays=(0.01, 0.01))
    task = asyncio.create_task(inbox.run())
    try:
        await eventually(lambda: inbox.applied == 1, timeout=30)  # the healthy one went on
        [letter] = await eventually(lambda: list_dead_letters(bootstrap, group), timeout=30)
        assert "failed 3 times: RuntimeError" in letter.reason
        assert letter.topic == topics["intake"] and letter.type.endswith("client-referred.v1")

        target.fixed = True
        assert await redrive(bootstrap, group) == 1
        await eventually(lambda: inbox.applied == 2, timeout=30)
        assert app.trajectory(broken)["trajectory_id"] == str(broken)
        assert await redrive(bootstrap, group) == 0  # nothing twice
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await producer.stop()
        app.close()
