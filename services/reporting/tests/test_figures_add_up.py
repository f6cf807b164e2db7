"""The trajectory figures add up (issue 14, item 7).

Every trajectory opened is in exactly one of three states: open, placed (it ended in a
regular job) or closed (it ended otherwise). So

    opened = open + placed + closed,   closed = sum(closed_by_reason)

and a placement, which trajectory publishes as PlacedInJob followed by TrajectoryClosed
with reason "placed", is counted once, as placed. The same split holds per provider. The
identity is stated in the API description of /figures, and checked here on the store
(SQLite, through the API) as well as on folded documents.
"""

import datetime as dt
import uuid

import pytest
from fastapi.testclient import TestClient

from contracts import events as ev
from contracts.access import Credentials
from infra.demo import write_credentials
from reporting.api import create_api
from reporting.documents import key_of, new_document, project
from reporting.figures import provider_results, trajectory_figures
from reporting.store import ReportingStore
from services.reporting.tests.factory import D, placed_trajectory, rejected, tender, waitlisted, wrap


def _closed(events, reason, on):
    t = events[1].data.trajectory_id
    return wrap(ev.TrajectoryClosed(trajectory_id=t, reason=reason, closed_on=on))


def placed(provider="agens"):
    """A placement as trajectory publishes it: PlacedInJob, then TrajectoryClosed(placed)."""
    events = placed_trajectory(provider=provider)
    return [*events, _closed(events, "placed", D + dt.timedelta(days=40))]


def closed(reason, provider="agens"):
    t, r, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    return [
        wrap(ev.TrajectoryOpened(trajectory_id=t, referral_id=r, client_id=c, municipality="alkmaar",
                                 programme="focus2move", opened_on=D)),
        wrap(ev.ProviderAssigned(trajectory_id=t, provider=provider,
                                 discipline="Directe bemiddeling en Nazorg", assigned_on=D)),
        wrap(ev.TrajectoryClosed(trajectory_id=t, reason=reason, closed_on=D + dt.timedelta(days=5))),
    ]


def the_mix():
    """3 placed (each with its TrajectoryClosed "placed"), 3 closed otherwise, 2 open."""
    return (placed() + placed() + placed("dhg") + closed("dropped-out") + closed("moved-away")
            + closed("dropped-out", "dhg") + waitlisted() + waitlisted(admitted_on=D) + rejected())


def fold(events):
    docs = {}
    for e in events:
        key = key_of(e.data)
        project(docs.setdefault(key, new_document(*key)), e.data, e.attributes)
    return [d for d in docs.values()]


def assert_adds_up(t):
    trajectories = t["trajectories"]
    assert trajectories["open"] + trajectories["placed"] + trajectories["closed"] == trajectories["opened"]
    assert sum(trajectories["closed_by_reason"].values()) == trajectories["closed"]
    assert "placed" not in trajectories["closed_by_reason"]


def test_a_placement_is_counted_once_and_the_figures_add_up():
    t = trajectory_figures(fold(the_mix()))
    assert t["trajectories"] == {"opened": 8, "open": 2, "placed": 3, "closed": 3,
                                 "closed_by_reason": {"dropped-out": 2, "moved-away": 1}}
    assert_adds_up(t)
    assert t["outflow_to_work"] == {"placed": 3, "share": round(3 / 8, 4)}


def test_a_placement_whose_closing_has_not_arrived_yet_is_already_placed_once():
    events = placed_trajectory()  # PlacedInJob folded, its TrajectoryClosed still on its way
    t = trajectory_figures(fold(events))
    assert t["trajectories"]["placed"] == 1 and t["trajectories"]["open"] == 0
    assert_adds_up(t)


def test_per_provider_placed_and_closed_do_not_overlap():
    rows = {(r["provider"], r["discipline"]): r for r in provider_results(fold(the_mix()))}
    agens = rows[("agens", "Directe bemiddeling en Nazorg")]
    dhg = rows[("dhg", "Directe bemiddeling en Nazorg")]
    assert (agens["assigned"], agens["placed"], agens["closed"]) == (4, 2, 2)
    assert (dhg["assigned"], dhg["placed"], dhg["closed"]) == (2, 1, 1)
    for row in rows.values():
        assert row["placed"] + row["closed"] <= row["assigned"]


@pytest.fixture
def client(tmp_path):
    path, tokens = write_credentials(tmp_path / "config")
    store = ReportingStore(f"sqlite:///{tmp_path}/r.db")
    for offset, e in enumerate(tender() + the_mix()):
        store.apply(e, "t", 0, offset)
    yield TestClient(create_api(store, Credentials.from_file(path))), tokens
    store.close()


def test_the_api_answers_figures_that_add_up_and_states_the_identity(client):
    http, tokens = client
    answer = http.get("/figures", headers={"Authorization": f"Bearer {tokens['region-staff']}"})
    assert answer.status_code == 200
    assert_adds_up(answer.json()["trajectories"])
    assert answer.json()["trajectories"]["trajectories"]["placed"] == 3
    description = http.get("/openapi.json").json()["paths"]["/figures"]["get"]["description"]
    assert "opened = open + placed + closed" in description
    assert "closed = sum(closed_by_reason)" in description
