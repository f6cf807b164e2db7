import datetime as dt
import uuid

from contracts.envelope import envelope, source_urn
from contracts.events import TrajectoryOpened
from contracts.service import Outcome
from coaching.application import CoachingApplication

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def opened(municipality, n):
    data = TrajectoryOpened(trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(),
                            client_id=uuid.uuid4(), municipality=municipality,
                            programme="focus2move", opened_on=dt.date(2026, 11, 1))
    return envelope(data, source=source_urn(municipality, "tweespoor-trajectory"),
                    origin=f"t/{n}/0", sequence=1, time=NOW)


def test_coaching_follows_each_opened_trajectory_once_per_municipality():
    app = CoachingApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"})
    events = [opened("alkmaar", 1), opened("alkmaar", 2), opened("castricum", 3)]
    for offset, event in enumerate(events):
        assert app.apply(event, "t", 0, offset) is Outcome.APPLIED
    assert app.apply(events[0], "t", 0, 9) is Outcome.SEEN_EVENT
    assert app.followed_per_municipality() == {"alkmaar": 2, "castricum": 1}
