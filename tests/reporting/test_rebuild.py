"""Read models from the real broker, live and rebuilt from offset 0 beside them
(SQLite and PostgreSQL), in one process or several: the same bytes, and no side effect."""

from __future__ import annotations

import asyncio

import pytest

from contracts import kafka
from contracts.envelope import to_record
from contracts.inbox import Inbox
from reporting.rebuild import rebuild
from reporting.store import ReportingStore
from services.reporting.tests.factory import placed_trajectory, rejected
from tests.support.kafka_tools import eventually, fresh_topics

pytestmark = [pytest.mark.kafka]


@pytest.mark.parametrize("workers", [1, 3, None])
async def test_a_rebuild_from_offset_0_gives_the_live_read_models_byte_for_byte(bootstrap, database_url, workers):
    topics = await fresh_topics(bootstrap, "intake", "trajectory", "coaching")
    store = ReportingStore(database_url(f"reporting{workers or 0}"))
    store.group = f"reporting-{topics['intake'].split('.')[1]}"
    await fresh_topics(bootstrap, groups=(store.group,))
    producer = kafka.producer(bootstrap, "rebuild-test")
    await producer.start()

    async def publish(events):
        for event in events:
            service = event.attributes.source.rsplit("tweespoor-", 1)[1]
            key, value, headers = to_record(event)
            await producer.send_and_wait(topics[service], value, key=key, headers=headers)

    first = [e for i in range(30) for e in placed_trajectory(["alkmaar", "heiloo"][i % 2])] + rejected()
    await publish(first)
    await publish(first[:10])  # a relay that published some events twice
    inbox = Inbox(bootstrap_servers=bootstrap, topics=list(topics.values()), target=store, producer=producer)
    live = asyncio.create_task(inbox.run())
    try:
        await eventually(lambda: sum(d["events"] for d in store.documents("trajectory")) == len(first), timeout=60)
        before = store.dump()
        old = store.live_generation()

        rebuilding = asyncio.create_task(rebuild(store, bootstrap, list(topics.values()), workers=workers))
        later = placed_trajectory("bergen")  # events arriving while the rebuild runs
        await publish(later)
        summary = await asyncio.wait_for(rebuilding, timeout=120)
        assert summary["generation"] == old + 1 == store.live_generation()
        await eventually(lambda: sum(d["events"] for d in store.documents("trajectory"))
                         == len(first) + len(later), timeout=60)
    finally:
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)
        await producer.stop()

    after = store.dump()
    assert sum(bool(d.get("placement")) for d in store.documents("trajectory", ["bergen"])) == 1  # live, after the swap
    assert after != before
    # a second rebuild, with nothing new, gives exactly the bytes of the live generation
    again = await rebuild(store, bootstrap, list(topics.values()), workers=workers)
    assert store.dump() == after
    assert again["records"] == len(first) + 10 + len(later)
    assert again["applied"] == len(first) + len(later)  # the ten published twice count once
    store.close()
