"""The rebuild keeps the documents of the generation it fills in memory between batches
and writes them back (SQLite and PostgreSQL): the same bytes as without, never a stale
copy over what others wrote, and never a generation finished without what a failed batch
lost."""

from __future__ import annotations

import pytest

import reporting.store
from reporting.store import RebuildAbandoned, ReportingStore
from services.reporting.tests.factory import placed_trajectory, rejected, tender, waitlisted


def _events():
    return tender() + [e for _ in range(6) for e in placed_trajectory()] + rejected() + waitlisted()


def _live(database_url, name, events):
    store = ReportingStore(database_url(name))
    for offset, e in enumerate(events):
        store.apply(e, "t", 0, offset)
    return store


def _batches(events, size, start=0):
    for o in range(start, len(events), size):
        yield [(e, "t", 0, i) for i, e in enumerate(events[o:o + size], start=o)]


@pytest.mark.parametrize("limit", [1, 3, 10_000])
def test_kept_documents_give_the_bytes_of_the_live_generation_whatever_is_evicted(database_url, limit):
    events = _events()
    store = _live(database_url, "kept", events)
    store.cache_limit = limit
    generation = store.begin_rebuild()
    for batch in _batches(events, 4):
        store.apply_batch(generation, batch)
    assert store.dump(generation) == store.dump()
    assert store.swap(generation) is True
    store.close()


def test_a_generation_that_went_live_is_read_from_the_store_not_from_memory(database_url):
    """After the swap the live consumer writes the generation: a batch for it then must
    fold into what the live path wrote, not into the copy the rebuild kept."""
    events = _events()
    reference = _live(database_url, "reference", events)
    store = ReportingStore(database_url("swapped"))
    generation = store.begin_rebuild()
    half = len(events) // 2
    store.apply_batch(generation, [(e, "t", 0, o) for o, e in enumerate(events[:half])])
    assert store.swap(generation) is True  # the live one was empty: caught up
    store.apply(events[half], "t", 0, half)  # live, onto the documents the rebuild kept
    store.apply_batch(generation, [(e, "t", 0, o) for o, e in enumerate(events) if o > half])
    assert store.dump() == reference.dump()
    reference.close()
    store.close()


def test_a_superseded_rebuild_keeps_nothing_of_the_old_generation(database_url):
    events = _events()
    store = _live(database_url, "superseded", events)
    first = store.begin_rebuild()
    store.apply_batch(first, [(e, "t", 0, o) for o, e in enumerate(events[:5])])
    second = store.begin_rebuild()  # another rebuild took over; the first goes on regardless
    for batch in _batches(events, 7):
        store.apply_batch(second, batch)
    store.apply_batch(first, [(e, "t", 0, o) for o, e in enumerate(events)])
    assert store.dump(first) == store.dump(second) == store.dump()
    store.close()


def test_a_failed_batch_abandons_the_rebuild_and_a_new_one_gives_the_live_bytes(database_url, monkeypatch):
    events = _events()
    store = _live(database_url, "failed", events)
    generation = store.begin_rebuild()
    # the tender and the first three events of a trajectory: documents now kept, unwritten
    store.apply_batch(generation, [(e, "t", 0, o) for o, e in enumerate(events[:len(tender()) + 3])])

    folded = 0
    project = reporting.store.project

    def fails_late(doc, event, attributes):  # folds two into a kept document, then fails
        nonlocal folded
        folded += 1
        if folded == 3:
            raise RuntimeError("the batch fails after folding two events")
        return project(doc, event, attributes)

    monkeypatch.setattr(reporting.store, "project", fails_late)
    with pytest.raises(RuntimeError):
        store.apply_batch(generation, [(e, "t", 0, o) for o, e in enumerate(events)])
    monkeypatch.setattr(reporting.store, "project", project)
    # What it kept in memory is gone: the generation must never be finished or go live.
    with pytest.raises(RebuildAbandoned):
        store.apply_batch(generation, [(e, "t", 0, o) for o, e in enumerate(events)])
    with pytest.raises(RebuildAbandoned):
        store.swap(generation)
    again = store.begin_rebuild()
    for batch in _batches(events, 5):
        store.apply_batch(again, batch)
    assert store.swap(again) is True
    assert store.dump() == _live(database_url, "failed-reference", events).dump()
    store.close()


def test_documents_are_written_when_pushed_out_and_the_rest_when_flushed(database_url):
    """Written back: a document kept in memory is not in the store until it is pushed out
    or the rebuild is flushed, and each is written about once, not once per batch."""
    events = _events()
    reference = _live(database_url, "written-reference", events)
    store = ReportingStore(database_url("written"))
    store.cache_limit = 3
    generation = store.begin_rebuild()
    writes: list[int] = []
    write = store._write
    store._write = lambda cur, g, docs, positions: (writes.append(len(docs)), write(cur, g, docs, positions))[1]
    for batch in _batches(events, 4):
        store.apply_batch(generation, batch)
    kept = len(store._building.docs)
    assert store.lag(generation) == {}  # flushed: every position and document written
    assert writes[-1] == kept
    # a trajectory's six events span two batches at most: written once, after its last
    assert sum(writes) <= len(reference.dump().splitlines()) + 2 * 3
    assert store.swap(generation) is True
    assert store.dump() == reference.dump()
    reference.close()
    store.close()
