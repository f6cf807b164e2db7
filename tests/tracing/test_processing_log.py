"""The processing log beside each kind of store (SQLite, PostgreSQL, memory): records kept
per trace, in order, and apart from the store's own tables."""

from __future__ import annotations

import sqlite3

import pytest

from contracts import tracing
from contracts.processing import ProcessingLog, Record


def record(span: tracing.Span, activity: str, at: str) -> Record:
    return Record(trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
                  activity_id=activity, service="tweespoor-test", status="ok", subject_type="trajectory",
                  subject_id="5bc7c57a-1a55-55c1-8396-2d36cc16fe83", started_at=at, ended_at=at)


def test_records_are_kept_per_trace_in_the_order_they_happened(database_url):
    log = ProcessingLog(database_url("processing"))
    root, other = tracing.fresh(), tracing.fresh()
    child = root.child()
    log.record(record(child, "tweespoor-test:consume", "2026-11-30T10:00:01+00:00"))
    log.record(record(other, "tweespoor-test:GET /x", "2026-11-30T10:00:00+00:00"))
    log.record(record(root, "tweespoor-test:POST /x", "2026-11-30T10:00:00+00:00"))
    try:
        trace = log.records(root.trace_id)
        assert [(r["activity_id"], r["parent_span_id"]) for r in trace] == [
            ("tweespoor-test:POST /x", None), ("tweespoor-test:consume", root.span_id)]
        assert len(log.records()) == 3
    finally:
        log.close()


def test_an_sqlite_store_gets_its_log_in_a_file_of_its_own(tmp_path):
    log = ProcessingLog(f"sqlite:///{tmp_path}/intake.db")
    log.record(record(tracing.fresh(), "tweespoor-test:GET /x", "2026-11-30T10:00:00+00:00"))
    log.close()
    assert not (tmp_path / "intake.db").exists()  # the store's file is left alone
    with sqlite3.connect(tmp_path / "intake-processing.db") as conn:
        assert conn.execute("SELECT count(*) FROM processing_log").fetchone() == (1,)


def test_the_memory_log_and_unknown_urls():
    log = ProcessingLog("memory:")
    span = tracing.fresh()
    log.record(record(span, "tweespoor-test:GET /x", "2026-11-30T10:00:00+00:00"))
    assert [r["span_id"] for r in log.records(span.trace_id)] == [span.span_id]
    with pytest.raises(ValueError):
        ProcessingLog("mysql://nowhere/db")
