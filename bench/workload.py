"""Realistic event streams for the benchmarks, built from the real contract models.

Every trajectory gets the sequence the services would publish for it (intake's referral,
trajectory's lifecycle, coaching's year), with its own dates, providers and numbers of
obstacles and check-ins; some referrals are rejected or withdrawn and some are LBU job
offers. Trajectories are opened in cohorts whose events interleave by date, as they do
on the topics in production, and a few events are published twice (a relay that
crashed between publishing and recording its position), so deduplication is exercised.

Deterministic for a seed: two runs produce the same records.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from contracts import events as ev
from contracts.envelope import ID_NAMESPACE, SEQUENCE_WIDTH, CloudEvent, envelope, source_urn, to_record
from contracts.municipalities import MUNICIPALITIES
from contracts.providers import PROVIDERS
from contracts.topics import COACHING_EVENTS, INTAKE_EVENTS, TRAJECTORY_EVENTS

SERVICE_TOPICS = {"intake": INTAKE_EVENTS, "trajectory": TRAJECTORY_EVENTS, "coaching": COACHING_EVENTS}
COHORT = 3000  # trajectories open at the same time, whose events interleave
REPUBLISHED = 0.002  # share of events a relay publishes a second time
CHECK_EVERY = 1000  # records compared with contracts.envelope.to_record
RECORDED_AT = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
DISCIPLINES = ("Directe bemiddeling en Nazorg", "Schuldhulpverlening", "Verslavingszorg",
               "Psychosociale begeleiding")


@dataclass(frozen=True)
class Planned:
    """One event of a trajectory, before it is wrapped: which service says it, and when."""

    day: dt.date
    service: str
    town: str  # named in `source`, also for events whose payload has no municipality
    data: ev.Event


def trajectory_events(rng: random.Random, start: dt.date) -> list[Planned]:
    """What the three services publish about one referral, in order."""
    t, referral, client = _uuid(rng), _uuid(rng), _uuid(rng)
    town = rng.choice(MUNICIPALITIES)
    programme = rng.choice(("focus2move", "focus2move", "reintegration", "social-activation"))
    out: list[Planned] = []

    def add(days: int, service: str, data: ev.Event) -> dt.date:
        day = start + dt.timedelta(days=days)
        out.append(Planned(day, service, town, data))
        return day

    if rng.random() < 0.08:  # not eligible: one event
        code = rng.choice(("focus2move-not-offered", "no-benefit", "distance-too-small"))
        add(0, "intake", ev.ReferralRejected(trajectory_id=t, referral_id=referral, client_id=client,
                                             municipality=town, programme=programme, reason_code=code,
                                             rejected_on=start, reason_codes=(code,)))
        return out
    if rng.random() < 0.06:  # an LBU job offer before the referral (a document of its own)
        offer = _uuid(rng)
        add(-20, "intake", ev.JobOfferMade(trajectory_id=t, offer_id=offer, client_id=client,
                                           municipality=town, offered_on=start - dt.timedelta(days=20)))
        add(-5, "intake", ev.JobOfferAccepted(trajectory_id=t, offer_id=offer, client_id=client,
                                              municipality=town, accepted_on=start - dt.timedelta(days=5),
                                              contract_starts_on=start + dt.timedelta(days=7)))
    add(0, "intake", ev.ClientReferred(trajectory_id=t, referral_id=referral, client_id=client,
                                       municipality=town, programme=programme, benefit="bijstand",
                                       referred_on=start))
    opened = add(3, "trajectory", ev.TrajectoryOpened(trajectory_id=t, referral_id=referral, client_id=client,
                                                      municipality=town, programme=programme,
                                                      opened_on=start + dt.timedelta(days=3)))
    day = 3
    plan = rng.sample(DISCIPLINES, rng.randint(1, 3))
    day += 7
    add(day, "trajectory", ev.PlanAgreed(trajectory_id=t, agreed_on=opened + dt.timedelta(days=7),
                                         disciplines=tuple(plan)))
    providers = list(PROVIDERS)
    for discipline in plan:
        day += rng.randint(1, 5)
        add(day, "trajectory", ev.ProviderAssigned(trajectory_id=t, provider=rng.choice(providers),
                                                   discipline=discipline,
                                                   assigned_on=start + dt.timedelta(days=day)))
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        obstacle = _uuid(rng)
        day += rng.randint(1, 10)
        add(day, "trajectory", ev.ObstacleIdentified(trajectory_id=t, obstacle_id=obstacle,
                                                     kind=rng.choice(("debts", "addiction", "housing")),
                                                     identified_on=start + dt.timedelta(days=day)))
        day += rng.randint(10, 60)
        add(day, "trajectory", ev.ObstacleResolved(trajectory_id=t, obstacle_id=obstacle,
                                                   outcome=rng.choice(("resolved", "manageable")),
                                                   resolved_on=start + dt.timedelta(days=day)))
    day += rng.randint(5, 20)
    add(day, "trajectory", ev.ContractStarted(trajectory_id=t, employer="WNK",
                                              starts_on=start + dt.timedelta(days=day),
                                              ends_on=start + dt.timedelta(days=day + 180)))
    if rng.random() < 0.10:  # dropped out before a job
        day += rng.randint(20, 120)
        add(day, "intake", ev.ReferralWithdrawn(trajectory_id=t, referral_id=referral, municipality=town,
                                                withdrawn_on=start + dt.timedelta(days=day),
                                                reason="client-request"))
        add(day + 1, "trajectory", ev.TrajectoryClosed(trajectory_id=t, reason="dropped-out",
                                                       closed_on=start + dt.timedelta(days=day + 1)))
        return out
    day += rng.randint(30, 150)
    job = start + dt.timedelta(days=day)
    add(day, "trajectory", ev.PlacedInJob(trajectory_id=t, municipality=town, employer="Bakkerij De Korenschoof",
                                          hours_per_week=rng.choice((24, 32, 36)), contract_type="fixed-term",
                                          starts_on=job))
    add(day, "trajectory", ev.TrajectoryClosed(trajectory_id=t, reason="placed", closed_on=job))
    plan_id = _uuid(rng)
    due = tuple(job + dt.timedelta(days=30 * i) for i in range(1, 13))
    add(day + 1, "coaching", ev.CoachingStarted(trajectory_id=t, plan_id=plan_id, municipality=town,
                                                coach_id=f"provider:{rng.choice(providers)}",
                                                job_starts_on=job, ends_on=job + dt.timedelta(days=365),
                                                check_ins_due=due))
    employed = True
    for i, when in enumerate(due[: rng.randint(4, 12)], start=1):
        if rng.random() < 0.06:
            add((when - start).days, "coaching", ev.CheckInOverdue(trajectory_id=t, plan_id=plan_id,
                                                                    check_in=i, due_on=when))
            continue
        add((when - start).days, "coaching", ev.CheckInRecorded(trajectory_id=t, plan_id=plan_id, check_in=i,
                                                                 held_on=when, contact_made=True,
                                                                 still_employed=employed))
        if i == 6:
            add((when - start).days, "coaching", ev.SixMonthPointReached(
                trajectory_id=t, plan_id=plan_id, measured_on=when, employed=employed,
                same_employer=employed))
        if employed and rng.random() < 0.03:
            employed = False
            add((when - start).days + 1, "coaching", ev.JobLost(trajectory_id=t, plan_id=plan_id,
                                                                 lost_on=when + dt.timedelta(days=1),
                                                                 reason="contract-ended"))
    end = job + dt.timedelta(days=365)
    add((end - start).days, "coaching", ev.CoachingCompleted(trajectory_id=t, plan_id=plan_id,
                                                             completed_on=end, employed_at_end=employed,
                                                             same_employer=employed))
    return out


def _stream(total: int, seed: int, stats: Counter[str]) -> Iterator[tuple[str, ev.Event, str, int, str]]:
    """(service, payload, town, version, trajectory id as text) until `total`, cohort after
    cohort, republished events included; `stats["republished"]` counts those."""
    rng = random.Random(seed)
    sent, cohort_start = 0, dt.date(2024, 1, 1)
    while sent < total:
        planned: list[tuple[dt.date, int, str, ev.Event, str, int, str]] = []
        for _ in range(COHORT):
            start = cohort_start + dt.timedelta(days=rng.randint(0, 90))
            events = trajectory_events(rng, start)
            subject = str(events[0].data.trajectory_id)  # once per trajectory, not per event
            for version, p in enumerate(events, start=1):
                planned.append((p.day, len(planned), p.service, p.data, p.town, version, subject))
        planned.sort()  # by day, then as planned (the index is unique): each trajectory keeps its order
        for _, _, service, data, town, version, subject in planned:
            yield service, data, town, version, subject
            sent += 1
            if sent < total and rng.random() < REPUBLISHED:
                yield service, data, town, version, subject  # the same CloudEvent at a new offset
                sent += 1
                stats["republished"] += 1
            if sent >= total:
                return
        cohort_start += dt.timedelta(days=30)


def _cloud_event(service: str, data: ev.Event, town: str, version: int) -> CloudEvent:
    source = source_urn(town, f"tweespoor-{service}")
    return envelope(data, source=source, origin=f"{data.trajectory_id}/{service}/{version}",
                    sequence=version, time=RECORDED_AT)


def cloud_events(total: int, seed: int = 9, stats: Counter[str] | None = None,
                 ) -> Iterator[tuple[str, CloudEvent]]:
    """(topic, CloudEvent) pairs until `total` have been yielded, cohort after cohort;
    `stats["republished"]` counts the events yielded a second time."""
    stats = Counter() if stats is None else stats
    for service, data, town, version, _ in _stream(total, seed, stats):
        yield SERVICE_TOPICS[service], _cloud_event(service, data, town, version)


def records(total: int, seed: int = 9, stats: Counter[str] | None = None,
            ) -> Iterator[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    """(topic, key, value, headers): what the services' relays put on Kafka, byte for byte
    `to_record` of `cloud_events`, at about half the CPU: the payloads are still the
    validated contract models, but the envelope is written straight into headers. Every
    `CHECK_EVERY`-th record and the first of each type are compared with the real thing."""
    stats = Counter() if stats is None else stats
    encode, checked = _Encoder(), set()
    for n, (service, data, town, version, subject) in enumerate(_stream(total, seed, stats)):
        record = encode(service, data, town, version, subject)
        if n % CHECK_EVERY == 0 or data.type not in checked:
            checked.add(data.type)
            if record != to_record(_cloud_event(service, data, town, version)):
                raise AssertionError(f"record {n} ({data.type}) differs from contracts.envelope.to_record")
        yield SERVICE_TOPICS[service], *record


class _Encoder:
    """`to_record(envelope(...))` without building and validating an `Attributes` per
    event (the payload is a validated model already); sources and the constant headers
    are made once."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._namespace = hashlib.sha1(ID_NAMESPACE.bytes)
        self._time = ("ce_time", RECORDED_AT.isoformat().replace("+00:00", "Z").encode())
        self._sequence = b"%%0%dd" % SEQUENCE_WIDTH  # zero-padded, as envelope() does

    def __call__(self, service: str, data: ev.Event, town: str, version: int, subject: str,
                 ) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        source = self._sources.get((town, service))
        if source is None:
            urn = source_urn(town, f"tweespoor-{service}").encode()
            source = self._sources[(town, service)] = (urn, b"|%s/" + service.encode() + b"/%d")
        urn, origin = source
        key = subject.encode()
        return key, data.model_dump_json().encode(), [
            _CONTENT_TYPE, _SPECVERSION, ("ce_id", self._id(urn + origin % (key, version))),
            ("ce_source", urn), ("ce_type", data.type.encode()), ("ce_subject", key),
            self._time, ("ce_sequence", self._sequence % version),
        ]

    def _id(self, name: bytes) -> bytes:
        """str(uuid.uuid5(ID_NAMESPACE, name)), without the UUID object."""
        sha = self._namespace.copy()
        sha.update(name)
        h = bytearray(sha.digest()[:16])
        h[6] = (h[6] & 0x0F) | 0x50  # version 5
        h[8] = (h[8] & 0x3F) | 0x80  # RFC 4122 variant
        x = h.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}".encode()


_CONTENT_TYPE = ("content-type", b"application/json")
_SPECVERSION = ("ce_specversion", b"1.0")


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)
