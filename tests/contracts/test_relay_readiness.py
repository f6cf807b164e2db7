"""A relay that cannot publish says so where an operator looks: an error log each round
and its service not ready, until it publishes again (issue 14, item 2)."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaConnectionError

from contracts.health import Readiness
from contracts.outbox import OutboxRelay


class Failing:
    """A relay's store-and-broker step that fails a given number of times, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    async def __call__(self) -> int:
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("broker away")
        return 0


async def test_a_relay_that_cannot_publish_is_not_ready_until_it_publishes_again(caplog):
    caplog.set_level(logging.ERROR)
    readiness = Readiness()
    relay = OutboxRelay(app=None, translate=lambda e: [], producer=None, topic="t",  # type: ignore[arg-type]
                        system="tweespoor-test", idle_seconds=0.01, readiness=readiness)
    relay.relay_once = Failing(1)  # type: ignore[method-assign]
    states: list[dict[str, str]] = []
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(300):
            states.append(readiness.reasons)
            if len(states) > 1 and states[-2] and not states[-1]:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stalled = [s for s in states if s]
    assert stalled and "relay t" in stalled[0] and "KafkaConnectionError" in stalled[0]["relay t"]
    assert states[-1] == {}, "ready again once it published"
    assert any(r.getMessage() == "outbox_relay_failed" for r in caplog.records)


