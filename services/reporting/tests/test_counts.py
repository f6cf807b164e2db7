import datetime as dt
import uuid

import pytest

from contracts.envelope import envelope, source_urn
from contracts.events import TrajectoryOpened
from contracts.service import Outcome
from reporting.store import ReportingStore

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def opened(n):
    data = TrajectoryOpened(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(),
                            client_id=uuid.uuid4(), municipality="bergen",
                            programme="social-activation", opened_on=dt.date(2026, 11, 1))
    return envelope(data, source=source_urn("bergen", "tweespoor-trajectory"),
                    origin=f"t/{n}/0", sequence=1, time=NOW)


@pytest.fixture
def store(tmp_path):
    store = ReportingStore(f"sqlite:///{tmp_path}/reporting.db")
    yield store
    store.close()


def test_each_event_counts_once_however_often_it_arrives(store):
    first, second = opened(1), opened(2)
    assert store.apply(first, "t", 0, 0) is Outcome.APPLIED
    assert store.apply(first, "t", 0, 0) is Outcome.SEEN_OFFSET
    assert store.apply(first, "t", 0, 1) is Outcome.SEEN_EVENT
    assert store.apply(second, "t", 0, 2) is Outcome.APPLIED
    assert store.event_counts() == {TrajectoryOpened.type: 2}
    assert store.position("t", 0) == 2


def test_the_position_survives_a_restart(tmp_path):
    url = f"sqlite:///{tmp_path}/reporting.db"
    store = ReportingStore(url)
    store.apply(opened(1), "t", 2, 41)
    store.close()
    reopened = ReportingStore(url)
    assert reopened.position("t", 2) == 41
    assert reopened.position("t", 0) is None
    reopened.close()
