import datetime as dt
import json
import uuid

import pytest

from contracts.envelope import (
    PoisonRecord,
    UnknownEventType,
    envelope,
    from_record,
    read_attributes,
    source_urn,
    to_record,
)
from contracts.events import ClientReferred, Event, TrajectoryOpened

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def referred(**overrides):
    fields = dict(
        trajectory_id=uuid.uuid4(), referral_id=uuid.uuid4(), client_id=uuid.uuid4(),
        municipality="alkmaar", programme="focus2move", benefit="bijstand",
        referred_on=dt.date(2026, 11, 2),
    )
    return ClientReferred(**(fields | overrides))


def wrap(event, origin="agg/1/0"):
    return envelope(event, source=source_urn("alkmaar", "tweespoor-intake"), origin=origin,
                    sequence=1, time=NOW)


def test_binary_mode_puts_attributes_in_ce_headers_and_the_payload_in_the_value():
    event = referred()
    key, value, headers = to_record(wrap(event))
    names = dict(headers)
    assert key == str(event.trajectory_id).encode()
    assert names["content-type"] == b"application/json"
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_type"] == b"nl.reintegratie.referral.client-referred.v1"
    assert names["ce_subject"] == str(event.trajectory_id).encode()
    assert names["ce_sequence"] == b"00000000000000000001"
    assert names["ce_source"].startswith(b"urn:nld:oin:")
    assert json.loads(value)["programme"] == "focus2move"


def test_a_record_decodes_to_the_same_event():
    original = wrap(referred())
    decoded = from_record(*to_record(original))
    assert decoded == original


def test_the_same_origin_gives_the_same_id_and_another_origin_another():
    event = referred()
    assert wrap(event).attributes.id == wrap(event).attributes.id
    assert wrap(event).attributes.id != wrap(event, origin="agg/2/0").attributes.id


def test_sequence_sorts_lexicographically_like_the_version():
    low = envelope(referred(), source=source_urn("bergen", "x"), origin="o", sequence=9, time=NOW)
    high = envelope(referred(), source=source_urn("bergen", "x"), origin="o", sequence=10, time=NOW)
    assert low.attributes.sequence < high.attributes.sequence


def test_an_unknown_type_is_poison_of_its_own_kind():
    key, value, headers = to_record(wrap(referred()))
    headers = [(n, b"nl.reintegratie.referral.client-referred.v9" if n == "ce_type" else v)
               for n, v in headers]
    with pytest.raises(UnknownEventType):
        from_record(key, value, headers)


@pytest.mark.parametrize("value", [b"not json", b"{}", b'{"trajectory_id": 1}', None])
def test_an_undecodable_payload_is_poison(value):
    key, _, headers = to_record(wrap(referred()))
    with pytest.raises(PoisonRecord):
        from_record(key, value, headers)


def test_missing_attributes_are_poison_and_the_reason_names_the_field_not_the_value():
    key, value, headers = to_record(wrap(referred()))
    headers = [(n, v) for n, v in headers if n != "ce_source"]
    with pytest.raises(PoisonRecord, match="source"):
        read_attributes(headers)


def test_a_key_that_is_not_the_subject_is_poison():
    _, value, headers = to_record(wrap(referred()))
    with pytest.raises(PoisonRecord, match="key"):
        from_record(b"someone-else", value, headers)


def test_validation_errors_never_echo_the_value():
    key, value, headers = to_record(wrap(referred()))
    payload = json.loads(value) | {"municipality": "123456782"}
    with pytest.raises(PoisonRecord) as caught:
        from_record(key, json.dumps(payload).encode(), headers)
    assert "123456782" not in caught.value.reason
    assert "municipality" in caught.value.reason


def test_events_are_frozen_and_refuse_unknown_fields():
    event = referred()
    with pytest.raises(Exception):
        event.programme = "reintegration"  # type: ignore[misc]
    with pytest.raises(Exception):
        TrajectoryOpened(**referred().model_dump(exclude={"benefit", "referred_on"}),
                         opened_on=dt.date(2026, 1, 1), bsn="123456782")


def test_the_catalogue_has_every_event_of_the_lifecycle():
    names = {model.__name__ for model in Event.catalogue.values()}
    assert names >= {
        "ClientReferred", "ReferralRejected", "TrajectoryOpened", "ProviderAssigned",
        "ContractStarted", "ObstacleIdentified", "ObstacleResolved", "PlacedInJob",
        "TrajectoryClosed", "CoachingStarted", "CheckInRecorded", "CheckInOverdue", "JobLost",
        "CoachingCompleted",
    }


def test_no_event_has_a_field_for_personal_data():
    personal = {"bsn", "name", "first_name", "last_name", "address", "date_of_birth", "birth_date"}
    for model in Event.catalogue.values():
        assert not personal & set(model.model_fields), model.__name__
