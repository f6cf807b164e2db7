"""Dead letters on the real broker.

A record whose handler fails every retry goes to the group's dead-letter topic and the
consumer goes on; a record too large for a copy with the dead-letter headers (one at its
topic's exact size limit, or a byte under) is dead-lettered in a bounded form instead of
stopping the consumer; a consumer that cannot make progress says so (error log with
backoff, health not ready). A re-drive delivers a group's letters to that group alone,
through its retry topic, counts the attempts, refuses a letter that failed again after N
re-drives unless forced, and a letter that now succeeds is applied once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from eventsourcing.persistence import OperationalError

from contracts import kafka
from contracts.deadletters import list_dead_letters, redrive
from contracts.envelope import envelope, source_urn, to_record
from contracts.events import ClientReferred
from contracts.inbox import Inbox
from contracts.service import Outcome, store_env
from contracts.topics import Topic, dead_letter_topic
from tests.support.kafka_tools import eventually, header, read_all
from trajectory.application import TrajectoryApplication

pytestmark = [pytest.mark.kafka]


class Flaky:
    """A trajectory store whose handler fails for one trajectory until it is fixed (and,
    while `down`, whose store is away altogether)."""

    def __init__(self, app: TrajectoryApplication, broken: uuid.UUID | None) -> None:
        self.app, self.broken, self.fixed, self.down = app, broken, False, False
        self.group = app.group
        self.outcomes: list[Outcome] = []

    def position(self, topic: str, partition: int) -> int | None:
        return self.app.position(topic, partition)

    def incarnation(self, topic: str, topic_id: str) -> int:
        return self.app.incarnation(topic, topic_id)

    def apply(self, cloud_event, topic, partition, offset) -> Outcome:
        if self.down:
            raise OperationalError("the store is away")
        if cloud_event.data.trajectory_id == self.broken and not self.fixed:
            raise RuntimeError("the handler's dependency is down")
        outcome = self.app.apply(cloud_event, topic, partition, offset)
        self.outcomes.append(outcome)
        return outcome


def referred(trajectory_id: uuid.UUID, n: int, padding: int = 0):
    """A ClientReferred record; `padding` blanks after the JSON make it larger, still valid."""
    data = ClientReferred(trajectory_id=trajectory_id, referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                          municipality="castricum", programme="social-activation", benefit="wao",
                          referred_on=dt.date(2026, 11, 1))
    key, value, headers = to_record(envelope(data, source=source_urn("castricum", "tweespoor-intake"),
                                             origin=f"r/{n}", sequence=1, time=dt.datetime.now(dt.UTC)))
    return key, value + b" " * padding, headers


def batch_size(key: bytes | None, value: bytes | None, headers) -> int:
    """What the broker compares with `max.message.bytes`: the record batch of this one
    record, with its headers, as a producer sends it."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=2**31)
    builder.append(0, timestamp=None, key=key, value=value, headers=headers)
    return len(builder.build())


def referred_of_size(trajectory_id: uuid.UUID, n: int, size: int):
    """A valid ClientReferred whose record batch is exactly `size` bytes."""
    padding = 0
    while (now := batch_size(*referred(trajectory_id, n, padding))) != size:
        padding += size - now
    return referred(trajectory_id, n, padding)


async def topics_for(bootstrap: str, *groups: str) -> str:
    """A fresh event topic, and for each group its dead-letter and retry topics as the
    declarative list has them; returns the event topic's name."""
    from contracts.topics import group_topics

    name = f"test.{uuid.uuid4().hex[:10]}.intake"
    await kafka.ensure_topics(bootstrap, (Topic(name), *(t for g in groups for t in group_topics(g))))
    return name


def store(tmp_path, group: str, name: str = "t") -> TrajectoryApplication:
    app = TrajectoryApplication(store_env(f"sqlite:///{tmp_path}/{name}.db"))
    app.group = group
    return app


def inbox_for(bootstrap, topic, target, producer, **extra) -> Inbox:
    from contracts.topics import retry_topic

    return Inbox(bootstrap_servers=bootstrap, topics=[topic], target=target, producer=producer,
                 retry_delays=(0.01, 0.01), retry_topic=retry_topic(target.group), **extra)


async def stopped(*tasks: asyncio.Task) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_failing_handler_dead_letters_and_a_redrive_applies_it_once(bootstrap, tmp_path):
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topic = await topics_for(bootstrap, group)
    app = store(tmp_path, group)
    broken, healthy = uuid.uuid4(), uuid.uuid4()
    target = Flaky(app, broken)
    producer = kafka.producer(bootstrap, "dlq-test")
    await producer.start()
    for n, trajectory_id in enumerate((broken, healthy)):
        key, value, headers = referred(trajectory_id, n)
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    inbox = inbox_for(bootstrap, topic, target, producer)
    task = asyncio.create_task(inbox.run())
    try:
        await eventually(lambda: inbox.applied == 1, timeout=30)  # the healthy one went on
        letter = (await eventually(lambda: list_dead_letters(bootstrap, group), timeout=30))[0]
        assert "failed 3 times: RuntimeError" in letter.reason
        assert letter.topic == topic and letter.type.endswith("client-referred.v1")
        assert letter.attempts == 0 and not letter.truncated  # a small record is copied whole

        target.fixed = True
        assert letter.offset in (await redrive(bootstrap, group)).redriven
        await eventually(lambda: inbox.applied == 2, timeout=30)
        assert app.trajectory(broken)["trajectory_id"] == str(broken)
        again = await redrive(bootstrap, group)  # nothing twice
        assert again.redriven == [] and again.refused == []
        assert len(await read_all(bootstrap, topic)) == 2  # the shared topic is left alone
    finally:
        await stopped(task)
        await producer.stop()
        app.close()


@pytest.mark.parametrize("below", [0, 1], ids=["at-the-limit", "a-byte-under"])
async def test_a_record_at_its_topics_size_limit_is_dead_lettered_bounded_and_the_consumer_goes_on(
        bootstrap, tmp_path, below):
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topic = await topics_for(bootstrap, group)
    from contracts.deadletters import max_message_bytes

    limit = await max_message_bytes(bootstrap, topic)
    assert limit is not None and limit == await max_message_bytes(bootstrap, dead_letter_topic(group))
    app = store(tmp_path, group)
    broken, healthy = uuid.uuid4(), uuid.uuid4()
    target = Flaky(app, broken)
    # A publisher allowed to send what the topic allows; not idempotent, so the refusal
    # below leaves it usable.
    publisher = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * limit)
    producer = kafka.producer(bootstrap, "dlq-test")
    await publisher.start()
    await producer.start()
    try:
        over = referred_of_size(broken, 0, limit + 1)
        with pytest.raises(MessageSizeTooLargeError):  # the size is the topic's very limit
            await publisher.send_and_wait(topic, over[1], key=over[0], headers=over[2], partition=0)
        big = referred_of_size(broken, 0, limit - below)
        sent = await publisher.send_and_wait(topic, big[1], key=big[0], headers=big[2], partition=0)
        key, value, headers = referred(healthy, 1)
        await publisher.send_and_wait(topic, value, key=key, headers=headers, partition=0)
        await publisher.send_and_wait(topic, b"\x00not json", key=b"k", headers=headers, partition=0)

        inbox = Inbox(bootstrap_servers=bootstrap, topics=[topic], target=target, producer=producer,
                      retry_delays=(0.01, 0.01))
        task = asyncio.create_task(inbox.run())
        try:
            await eventually(lambda: inbox.applied == 1, timeout=60)  # the consumer went on
            letters = await eventually(lambda: _distinct(read_all(bootstrap, dead_letter_topic(group)), 2),
                                       timeout=60)
        finally:
            await stopped(task)
        bounded, poison = letters
        assert header(bounded, "dlq_truncated") == "true"
        assert (header(bounded, "dlq_topic"), header(bounded, "dlq_partition"), header(bounded, "dlq_offset")) \
            == (topic, "0", str(sent.offset))
        assert "failed 3 times: RuntimeError" in header(bounded, "dlq_reason")
        for name, original in big[2]:  # the original's CloudEvent headers travel along
            assert header(bounded, name) == original.decode()
        excerpt = dict(bounded.headers)["dlq_excerpt"]
        assert 0 < len(excerpt) <= 4096 and big[1].startswith(excerpt)
        assert header(bounded, "dlq_size") == str(len(big[1]))
        assert bounded.value is None and bounded.key == big[0]
        # The next dead letter, small, is copied whole: the dead-letter producer still works.
        assert poison.value == b"\x00not json" and header(poison, "dlq_truncated") is None
        assert inbox.stalled is None
    finally:
        await publisher.stop()
        await producer.stop()
        app.close()


async def _distinct(records, n: int):
    """The first letter of each original record, once there are `n` (delivery is at least
    once: a record read again after a rebalance is dead-lettered again)."""
    found: dict[tuple, object] = {}
    for record in await records:
        found.setdefault((header(record, "dlq_topic"), header(record, "dlq_offset")), record)
    return list(found.values()) if len(found) >= n else None


async def _at_least(records, n: int):
    found = await records
    return found if len(found) >= n else None


async def test_a_truncated_dead_letter_is_redriven_from_its_original_and_applied_once(bootstrap, tmp_path):
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topic = await topics_for(bootstrap, group)
    from contracts.deadletters import max_message_bytes
    from contracts.topics import retry_topic

    limit = await max_message_bytes(bootstrap, topic)
    app = store(tmp_path, group)
    broken = uuid.uuid4()
    target = Flaky(app, broken)
    publisher = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * limit)
    producer = kafka.producer(bootstrap, "dlq-test")
    await publisher.start()
    await producer.start()
    inbox = inbox_for(bootstrap, topic, target, producer)
    task = asyncio.create_task(inbox.run())
    try:
        big = referred_of_size(broken, 0, limit)
        await publisher.send_and_wait(topic, big[1], key=big[0], headers=big[2])
        letter = (await eventually(lambda: list_dead_letters(bootstrap, group), timeout=60))[0]
        assert letter.truncated

        target.fixed = True
        assert letter.offset in (await redrive(bootstrap, group)).redriven
        await eventually(lambda: inbox.applied == 1, timeout=60)
        assert app.trajectory(broken)["trajectory_id"] == str(broken)
        [retried] = await read_all(bootstrap, retry_topic(group))  # a letter twice is re-driven once
        assert retried.value == big[1] and header(retried, "dlq_attempts") == "1"
        assert (await redrive(bootstrap, group)).redriven == []
    finally:
        await stopped(task)
        await publisher.stop()
        await producer.stop()
        app.close()


async def test_a_redrive_goes_to_its_group_alone_counts_attempts_and_refuses_after_n(bootstrap, tmp_path):
    from contracts.topics import retry_topic

    mine, other = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("trajectory", "reporting"))
    topic = await topics_for(bootstrap, mine, other)
    broken, healthy = uuid.uuid4(), uuid.uuid4()
    app, app_other = store(tmp_path, mine, "mine"), store(tmp_path, other, "other")
    target, target_other = Flaky(app, broken), Flaky(app_other, broken)  # the other never fixed
    producer = kafka.producer(bootstrap, "dlq-test")
    await producer.start()
    for n, trajectory_id in enumerate((broken, healthy)):
        key, value, headers = referred(trajectory_id, n)
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    inbox, inbox_other = (inbox_for(bootstrap, topic, t, producer) for t in (target, target_other))
    tasks = [asyncio.create_task(i.run()) for i in (inbox, inbox_other)]

    async def letters(group: str, n: int):
        return await eventually(lambda: _at_least(list_dead_letters(bootstrap, group), n), timeout=60)

    async def failed_after(attempts: int):  # (a rebalance may dead-letter a record twice)
        async def found():
            return [letter for letter in await list_dead_letters(bootstrap, mine) if letter.attempts == attempts]
        return (await eventually(found, timeout=60))[0]

    try:
        await eventually(lambda: inbox.applied == 1 and inbox_other.applied == 1, timeout=60)
        first = await failed_after(0)
        await letters(other, 1)

        for attempt in (1, 2):  # re-driven, and failing again
            result = await redrive(bootstrap, mine, max_attempts=2)
            assert len(await read_all(bootstrap, topic)) == 2  # nothing back on the shared topic
            assert result.redriven and not result.refused
            latest = await failed_after(attempt)
            assert (latest.topic, latest.original_offset) == (first.topic, first.original_offset)
        retried = await read_all(bootstrap, retry_topic(mine))
        assert [header(r, "dlq_attempts") for r in retried] == ["1", "2"]

        refused = await redrive(bootstrap, mine, max_attempts=2)  # failed after two re-drives
        assert refused.redriven == [] and latest.offset in refused.refused
        assert (await redrive(bootstrap, mine, max_attempts=2)).refused == []  # said once
        assert len(await read_all(bootstrap, retry_topic(mine))) == 2

        target.fixed = True
        forced = await redrive(bootstrap, mine, max_attempts=2, force=True, offsets=[latest.offset])
        assert forced.redriven == [latest.offset]
        await eventually(lambda: inbox.applied == 2, timeout=60)
        assert app.trajectory(broken)["trajectory_id"] == str(broken)
        # Forced once more, it is not sent again; a copy sent again anyway (a re-drive that
        # stopped before recording its position) is recognised by its receipt.
        again = await redrive(bootstrap, mine, max_attempts=2, force=True, offsets=[latest.offset])
        assert again.redriven == [] and again.skipped == [latest.offset]
        last = (await read_all(bootstrap, retry_topic(mine)))[-1]
        await producer.send_and_wait(retry_topic(mine), last.value, key=last.key, headers=list(last.headers))
        await eventually(lambda: Outcome.SEEN_EVENT in target.outcomes, timeout=60)
        assert inbox.applied == 2

        # The other group never saw any of it again: only letters of its first failure.
        assert {letter.attempts for letter in await list_dead_letters(bootstrap, other)} == {0}
        assert inbox_other.applied == 1 and len(await read_all(bootstrap, retry_topic(other))) == 0
    finally:
        await stopped(*tasks)
        await producer.stop()
        app.close()
        app_other.close()


class _FlakyProducer:
    """The real producer, refusing the first `failures` sends as if the broker were away."""

    def __init__(self, producer, failures: int) -> None:
        self.producer, self.failures = producer, failures

    async def send(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise KafkaConnectionError("the broker is away")
        return await self.producer.send(*args, **kwargs)

    async def send_and_wait(self, *args, **kwargs):
        return await (await self.send(*args, **kwargs))


async def test_a_consumer_that_cannot_make_progress_says_so(bootstrap, tmp_path, caplog):
    from fastapi.testclient import TestClient

    from contracts.access import Credentials
    from contracts.web.health import readiness
    from trajectory.api import create_api

    caplog.set_level(logging.INFO, logger="contracts.inbox")
    group = f"trajectory-{uuid.uuid4().hex[:8]}"
    topic = await topics_for(bootstrap, group)
    app = store(tmp_path, group)
    target = Flaky(app, None)
    target.down = True
    api = create_api(app, Credentials({}))
    client = TestClient(api)
    producer = kafka.producer(bootstrap, "dlq-test")
    await producer.start()
    trajectory_id = uuid.uuid4()
    key, value, headers = referred(trajectory_id, 0)
    await producer.send_and_wait(topic, value, key=key, headers=headers)
    flaky_producer = _FlakyProducer(producer, failures=2)
    inbox = Inbox(bootstrap_servers=bootstrap, topics=[topic], target=target, producer=flaky_producer,
                  retry_delays=(0.01,))
    inbox.readiness = readiness(api)
    task = asyncio.create_task(inbox.run())
    try:
        assert client.get("/health").status_code == 200
        await eventually(lambda: getattr(inbox, "stalled", None), timeout=30)
        await eventually(lambda: len(_logged(caplog, "inbox_store_unavailable")) >= 3, timeout=30)
        waits = [r.retry_in for r in _logged(caplog, "inbox_store_unavailable")]
        assert waits == sorted(waits) and waits[-1] > waits[0]  # backing off
        assert all(r.levelno == logging.ERROR for r in _logged(caplog, "inbox_store_unavailable"))
        answer = client.get("/health")
        assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
        assert "store unavailable" in answer.text and str(trajectory_id) not in answer.text

        target.down = False
        await eventually(lambda: inbox.applied == 1, timeout=30)
        assert inbox.stalled is None and client.get("/health").status_code == 200

        # The dead-letter topic away a moment: said, waited for, and the letter lands once.
        await producer.send_and_wait(topic, b"\x00not json", key=b"k", headers=headers)
        await eventually(lambda: _logged(caplog, "inbox_dead_letter_failed"), timeout=30)
        [letter] = await eventually(lambda: read_all(bootstrap, dead_letter_topic(group)), timeout=30)
        assert letter.value == b"\x00not json"
        await eventually(lambda: inbox.stalled is None, timeout=10)
        assert client.get("/health").status_code == 200
    finally:
        await stopped(task)
        await producer.stop()
        app.close()


def _logged(caplog, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]
