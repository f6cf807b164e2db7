"""The employment registry over intake's HTTP API (in-memory store): request files for the
cohorts, the simulated registry's answers, an all-or-nothing import with a per-line report,
idempotency, and erasure reaching the kept files."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import uuid

from contracts.envelope import envelope, source_urn
from contracts.events import BenefitObserved, EmploymentObserved, PlacedInJob, TrajectoryOpened
from intake.registry import add_months, due_points
from intake.registry_files import read_answers
from intake.simulated_registry import simulate

from .conftest import auth

# Made-up people: every BSN passes the 11-test.
LBU_PERSON = {"bsn": "111222333", "name": "Registry Weigeraar", "date_of_birth": "1984-05-06"}
PLACED_PERSON = {"bsn": "123456782", "name": "Registry Geplaatst", "date_of_birth": "1979-09-10"}
BSNS = {LBU_PERSON["bsn"], PLACED_PERSON["bsn"]}
OFFSETS = itertools.count()


def cohort(client, app, clock) -> dict:
    """One refused LBU offer in the unknown-destination cohort, one placed client."""
    headers = auth(client.app.state.tokens)
    clock.today = dt.date(2026, 1, 10)
    offer = client.post("/job-offers", headers=headers, json={
        **LBU_PERSON, "municipality": "alkmaar", "offered_on": "2026-01-05", "caseworker_id": "cw-1"}).json()
    assert client.post(f"/job-offers/{offer['offer_id']}/refusal", headers=headers,
                       json={"refused_on": "2026-01-06"}).status_code == 200
    clock.today = dt.date(2026, 5, 1)
    assert app.mark_unknown_destinations(["alkmaar"]) == 1
    referral = client.post("/referrals", headers=headers, json={
        **PLACED_PERSON, "municipality": "alkmaar", "programme": "focus2move", "benefit": "bijstand",
        "distance_to_labour_market": "large", "referred_on": "2026-01-05", "caseworker_id": "cw-1"}).json()
    trajectory_id = uuid.UUID(referral["trajectory_id"])
    source = source_urn("alkmaar", "tweespoor-trajectory")
    for data in (TrajectoryOpened(trajectory_id=trajectory_id, referral_id=uuid.UUID(referral["referral_id"]),
                                  client_id=uuid.UUID(referral["client_id"]), municipality="alkmaar",
                                  programme="focus2move", opened_on=dt.date(2026, 1, 12)),
                 PlacedInJob(trajectory_id=trajectory_id, municipality="alkmaar", employer="Bakkerij",
                             hours_per_week=32, contract_type="fixed-term", starts_on=dt.date(2026, 3, 2))):
        n = next(OFFSETS)
        app.apply(envelope(data, source=source, origin=f"t/{n}", sequence=n + 1,
                           time=dt.datetime.now(dt.UTC)), "tweespoor.trajectory.events.v1", 0, n)
    clock.today = dt.date(2026, 11, 23)
    return {"offer": offer, "referral": referral}


def rows(file: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(file.decode())))


def build(client, on="2026-11-23", credential="alkmaar-case-system", municipality="alkmaar"):
    return client.post("/registry/requests", headers=auth(client.app.state.tokens, credential),
                       json={"municipality": municipality, "on": on})


def upload(client, file: bytes, credential="alkmaar-case-system"):
    return client.post("/registry/answers", content=file, headers={
        **auth(client.app.state.tokens, credential), "Content-Type": "text/csv"})


def recorded(app) -> int:
    return len(app.recorder.select_notifications(None, 10_000))


def test_points_are_counted_in_calendar_months():
    assert add_months(dt.date(2026, 8, 31), 6) == dt.date(2027, 2, 28)
    assert [p for p, _, _ in due_points("placed", dt.date(2025, 1, 15), dt.date(2026, 1, 15))] == [
        "placement-6-months", "placement-12-months"]
    assert due_points("lbu-unknown-destination", dt.date(2026, 1, 6), dt.date(2026, 4, 5)) == []


def test_the_cohorts_due_make_one_request_file_and_each_point_is_asked_once(client, app, clock, tokens):
    client.app.state.tokens = tokens
    made = cohort(client, app, clock)
    built = build(client)
    assert built.status_code == 201, built.text
    assert built.headers["content-type"].startswith("text/csv")
    lines = rows(built.content)
    assert [(r["line"], r["bsn"], r["point"], r["reference_date"], r["observe_on"]) for r in lines] == [
        ("1", LBU_PERSON["bsn"], "lbu-3-months", "2026-01-06", "2026-04-06"),
        ("2", LBU_PERSON["bsn"], "lbu-6-months", "2026-01-06", "2026-07-06"),
        ("3", PLACED_PERSON["bsn"], "placement-6-months", "2026-03-02", "2026-09-02"),
    ]
    request_id = lines[0]["request_id"]
    assert built.headers["location"] == f"/registry/requests/{request_id}"
    summary = client.get(f"/registry/requests/{request_id}", headers=auth(tokens)).json()
    assert summary["lines"] == 3 and summary["answered"] == 0
    assert not BSNS & set(str(summary).split("'"))
    assert {o["client_id"] for o in summary["observations"]} == {
        made["offer"]["client_id"], made["referral"]["client_id"]}
    # Asked once: the same day again finds nothing new; a later day only what fell due.
    assert build(client).status_code == 204
    clock.today = dt.date(2027, 3, 10)
    later = rows(build(client, on="2027-03-10").content)
    assert [r["point"] for r in later] == ["lbu-12-months", "placement-12-months"]


def test_the_simulated_registry_answers_plausibly_and_reproducibly(client, app, clock, tokens):
    client.app.state.tokens = tokens
    cohort(client, app, clock)
    request = build(client).content
    first, again, other = simulate(request, 7), simulate(request, 7), simulate(request, 8)
    assert first == again
    parsed = read_answers(first)
    assert not parsed.errors and parsed.rows == 3
    for line in parsed.lines:
        assert line.period_start.day == 1 and line.period_start <= line.period_end
        assert (line.employer_id is not None) == line.employed == (line.hours_per_week is not None)
        assert (line.benefit_kind is not None) == line.on_benefit
    many = simulate(request.replace(b"111222333", b"100000009"), 7)  # another person, same points
    assert read_answers(many).rows == 3 and other.count(b"\n") == first.count(b"\n")


def test_an_answer_file_is_imported_all_at_once_and_a_second_time_changes_nothing(client, app, clock, tokens):
    client.app.state.tokens = tokens
    cohort(client, app, clock)
    request = build(client).content
    request_id = rows(request)[0]["request_id"]
    answers = simulate(request, 7)
    before = recorded(app)
    first = upload(client, answers)
    assert first.status_code == 200, first.text
    assert first.json()["imported"] == 3 and first.json()["already_imported"] == 0
    assert [r["status"] for r in first.json()["report"]] == ["imported"] * 3
    assert recorded(app) == before + 1  # one event: all the lines, or none
    published = [e for n in app.recorder.select_notifications(None, 10_000)
                 for _, e in app.integration_events(app.mapper.to_domain_event(n))]
    observed = [e for e in published if isinstance(e, (EmploymentObserved, BenefitObserved))]
    assert len(observed) == 6
    assert {e.point for e in observed} == {"lbu-3-months", "lbu-6-months", "placement-6-months"}
    assert all(e.offer_id is not None for e in observed if e.cohort == "lbu-unknown-destination")
    text = "".join(e.model_dump_json() for e in observed)
    assert not any(bsn in text for bsn in BSNS)
    again = upload(client, answers)
    assert again.status_code == 200
    assert again.json()["imported"] == 0 and again.json()["already_imported"] == 3
    assert recorded(app) == before + 1
    summary = client.get(f"/registry/requests/{request_id}", headers=auth(tokens)).json()
    assert summary["answered"] == 3 and len(summary["imports"]) == 1


def test_a_bad_file_changes_nothing_and_names_rows_and_fields_without_a_bsn(client, app, clock, tokens):
    client.app.state.tokens = tokens
    cohort(client, app, clock)
    answers = simulate(build(client).content, 7).decode().splitlines()
    fields = [line.split(",") for line in answers]
    fields[1][2] = "100000009"  # row 2: someone else's BSN
    fields[2][6] = "2026-13-01"  # row 3: no such date
    bad = ("\n".join(",".join(f) for f in fields) + "\n").encode()
    before = recorded(app)
    answer = upload(client, bad)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["title"] == "Answer file rejected" and "nothing was imported" in problem["detail"]
    assert [(e["row"], e["line"], e["field"]) for e in problem["errors"]] == [
        (2, 1, "bsn"), (3, 2, "period_start")]
    assert not any(bsn in answer.text for bsn in BSNS | {"100000009"})
    assert recorded(app) == before
    for broken, field in ((b"not,a,header\n1,2,3\n", "header"), (b"\xff\xfe", "file"),
                          (answers[0].encode() + b"\n", "file")):
        problem = upload(client, broken)
        assert problem.status_code == 422 and problem.json()["errors"][0]["field"] == field
    assert recorded(app) == before


def test_other_municipalities_neither_build_for_nor_answer_anothers_people(client, app, clock, tokens):
    client.app.state.tokens = tokens
    cohort(client, app, clock)
    assert build(client, credential="bergen-case-system").status_code == 403
    assert build(client, credential="bergen-case-system", municipality="bergen").status_code == 204
    request = build(client).content
    request_id = rows(request)[0]["request_id"]
    bergen = auth(tokens, "bergen-case-system")
    assert client.get(f"/registry/requests/{request_id}", headers=bergen).status_code == 404
    assert client.get(f"/registry/requests/{request_id}/request.csv", headers=bergen).status_code == 404
    refused = upload(client, simulate(request, 7), credential="bergen-case-system")
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"request_id"}
    assert build(client, on="2026-11-24").status_code == 422  # not after today


def test_erasing_a_person_empties_their_bsn_in_the_kept_files_and_keeps_the_observations(
        client, app, clock, tokens):
    client.app.state.tokens = tokens
    made = cohort(client, app, clock)
    request = build(client).content
    request_id = rows(request)[0]["request_id"]
    assert upload(client, simulate(request, 7)).status_code == 200
    kept = {name: client.get(f"/registry/requests/{request_id}/{name}", headers=auth(tokens))
            for name in ("request.csv", "answers.csv")}
    assert all(LBU_PERSON["bsn"] in k.text for k in kept.values())
    summary = client.get(f"/registry/requests/{request_id}", headers=auth(tokens)).json()
    erased = client.post(f"/referrals/{made['referral']['referral_id']}/person/erasure",
                         headers=auth(tokens), json={"reason": "request"})
    assert erased.status_code == 200, erased.text
    for name in ("request.csv", "answers.csv"):
        after = client.get(f"/registry/requests/{request_id}/{name}", headers=auth(tokens))
        assert PLACED_PERSON["bsn"] not in after.text and LBU_PERSON["bsn"] in after.text
        erased_rows = [r for r in rows(after.content) if r["line"] == "3"]
        assert erased_rows and erased_rows[0]["bsn"] == ""
    assert client.get(f"/registry/requests/{request_id}", headers=auth(tokens)).json() == summary
    # never asked about again
    clock.today = dt.date(2027, 3, 10)
    assert [r["point"] for r in rows(build(client, on="2027-03-10").content)] == ["lbu-12-months"]
