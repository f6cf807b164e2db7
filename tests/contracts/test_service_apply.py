"""ServiceApplication.apply tells a duplicate from a version conflict.

Both surface as eventsourcing's IntegrityError when the processing event is recorded. A
duplicate (another member applied the record first) must be skipped; a conflict (another
writer moved one of the event's aggregates on) must be decided again on fresh state, or the
event's effect would be lost while its offset counts as consumed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, event

from contracts.envelope import envelope, source_urn
from contracts.events import ClientReferred
from contracts.service import Outcome, ServiceApplication, store_env

TALLY_ID = uuid.UUID("00000000-0000-4000-8000-00000000a11e")
TOPIC = "tweespoor.intake.events.v1"


class Tally(Aggregate):
    """How many referrals a municipality made, as a consumer might keep it."""

    @event("Created")
    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def create_id(cls) -> uuid.UUID:
        return TALLY_ID

    @event("Counted")
    def add(self) -> None:
        self.count += 1


class Tallying(ServiceApplication):
    group = "tallying"
    consumes = (ClientReferred,)
    interfere: Tallying | None = None  # another process writing the same tally

    def on_event(self, data: Any, attributes: Any, processing_event: Any) -> None:
        tally = self.repository.get(TALLY_ID)
        if self.interfere is not None:
            other, self.interfere = self.interfere, None
            counted = other.repository.get(TALLY_ID)
            counted.add()
            other.save(counted)  # now `tally` is one version behind
        tally.add()
        processing_event.collect_events(tally)


def referral_record(n: int):
    data = ClientReferred(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
                          municipality="alkmaar", programme="focus2move", benefit="bijstand",
                          referred_on=dt.date(2007, 3, 1))
    return envelope(data, source=source_urn("alkmaar", "tweespoor-intake"), origin=f"referral/{n}",
                    sequence=n, time=dt.datetime(2007, 3, 1, 9, tzinfo=dt.UTC))


@pytest.fixture
def apps(database_url):
    url = database_url("tallying")
    first, second = Tallying(store_env(url)), Tallying(store_env(url))
    first.save(Tally())
    yield first, second
    first.close()
    second.close()


def test_a_version_conflict_is_decided_again_not_taken_for_a_duplicate(apps):
    first, second = apps
    first.interfere = second
    outcome = first.apply(referral_record(1), TOPIC, 0, 0)
    assert outcome is Outcome.APPLIED
    # The other writer's count and this event's, each once.
    assert first.repository.get(TALLY_ID).count == 2
    assert first.has_applied(referral_record(1), TOPIC, 0, 0)


def test_a_record_another_member_applied_first_is_seen_not_applied_again(apps):
    first, second = apps
    record = referral_record(2)
    assert second.apply(record, TOPIC, 0, 5) is Outcome.APPLIED
    assert first.apply(record, TOPIC, 0, 5) is Outcome.SEEN_OFFSET
    # The same event at another offset (a relay that published it twice).
    assert first.apply(record, TOPIC, 0, 6) is Outcome.SEEN_EVENT
    assert first.repository.get(TALLY_ID).count == 1
