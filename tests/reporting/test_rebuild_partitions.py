"""A rebuild in one process per partition relies on every record sitting on the partition
Kafka's default partitioner gives its key. When one does not (a topic given partitions
later, another producer), it starts again by key and still gives the right bytes."""

from __future__ import annotations

import logging

import pytest
from aiokafka.partitioner import murmur2

from contracts import kafka
from contracts.envelope import to_record
from reporting.rebuild import rebuild
from reporting.store import ReportingStore
from services.reporting.tests.factory import placed_trajectory
from tests.support.kafka_tools import fresh_topics

pytestmark = [pytest.mark.kafka]


async def _publish(bootstrap, topics, events, *, off_partition: bool = False):
    producer = kafka.producer(bootstrap, "rebuild-partitions-test")
    await producer.start()
    try:
        for event in events:
            service = event.attributes.source.rsplit("tweespoor-", 1)[1]
            key, value, headers = to_record(event)
            partition = None
            if off_partition:  # the next partition over from the one its key gives
                partition = ((murmur2(key) & 0x7FFFFFFF) + 1) % 3
            await producer.send_and_wait(topics[service], value, key=key, headers=headers, partition=partition)
    finally:
        await producer.stop()


async def _dumps(bootstrap, topics, tmp_path, name):
    stores = {w: ReportingStore(f"sqlite:///{tmp_path}/{name}-{w}.db") for w in ("one", "auto")}
    summaries = {"one": await rebuild(stores["one"], bootstrap, list(topics.values()), workers=1),
                 "auto": await rebuild(stores["auto"], bootstrap, list(topics.values()), workers=None)}
    dumps = {w: store.dump() for w, store in stores.items()}
    for store in stores.values():
        store.close()
    return summaries, dumps


async def test_one_process_per_partition_gives_the_bytes_of_one_process(bootstrap, tmp_path, caplog):
    topics = await fresh_topics(bootstrap, "intake", "trajectory", "coaching")
    await _publish(bootstrap, topics, [e for i in range(9) for e in placed_trajectory(["alkmaar", "heiloo"][i % 2])])
    with caplog.at_level(logging.WARNING, logger="reporting.rebuild"):
        summaries, dumps = await _dumps(bootstrap, topics, tmp_path, "keyed")
    assert summaries["auto"]["processes"] == 3 and summaries["one"]["processes"] == 1
    assert dumps["auto"] == dumps["one"] and summaries["auto"]["applied"] == summaries["one"]["applied"]
    assert "rebuilding by key" not in caplog.text


async def test_a_record_off_its_partition_makes_the_rebuild_go_by_key(bootstrap, tmp_path, caplog):
    topics = await fresh_topics(bootstrap, "intake", "trajectory", "coaching")
    events = [e for i in range(9) for e in placed_trajectory(["alkmaar", "heiloo"][i % 2])]
    await _publish(bootstrap, topics, events[:-12])
    await _publish(bootstrap, topics, events[-12:], off_partition=True)  # two trajectories' worth
    with caplog.at_level(logging.WARNING, logger="reporting.rebuild"):
        summaries, dumps = await _dumps(bootstrap, topics, tmp_path, "off")
    assert "rebuilding by key" in caplog.text
    assert dumps["auto"] == dumps["one"] and summaries["auto"]["applied"] == summaries["one"]["applied"] == len(events)
