"""The file-exchange adapter of the employment registry: CSV files (formats in the README,
"Employment registry").

Both files: UTF-8 (a byte-order mark is tolerated), comma-separated, one header row exactly
as below, then one row per line; LF or CRLF; no quoting is needed (no field holds a comma).
Dates are ISO 8601 (YYYY-MM-DD), booleans `true`/`false`, hours a decimal with a point.
An empty field is an absent value.

Errors name the row (the header is row 1), the request line and the field, never the value:
a BSN must not end up in a report or a log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterable

from intake.domain import is_valid_bsn
from intake.registry import BENEFIT_KINDS, AnswerLine, LineError, ParsedAnswers, RequestLine

REQUEST_HEADER = ("request_id", "line", "bsn", "point", "reference_date", "observe_on")
ANSWER_HEADER = ("request_id", "line", "bsn", "employed", "employer_id", "hours_per_week",
                 "period_start", "period_end", "on_benefit", "benefit_kind")
EMPLOYER_ID = re.compile(r"^[A-Z][A-Z0-9-]{1,31}$")
MAX_BYTES = 8 * 1024 * 1024


def _csv(header: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def write_request(request_id: uuid.UUID, lines: list[RequestLine]) -> bytes:
    return _csv(REQUEST_HEADER, ((request_id, x.line, x.bsn, x.point, x.reference_date.isoformat(),
                                  x.observe_on.isoformat()) for x in lines))


def _flag(value: bool) -> str:
    return "true" if value else "false"


def write_answers(lines: list[AnswerLine]) -> bytes:
    return _csv(ANSWER_HEADER, ((x.request_id, x.line, x.bsn, _flag(x.employed), x.employer_id or "",
                                 "" if x.hours_per_week is None else f"{x.hours_per_week:g}",
                                 x.period_start.isoformat(), x.period_end.isoformat(),
                                 _flag(x.on_benefit), x.benefit_kind or "") for x in lines))


def _rows(file: bytes, header: tuple[str, ...]) -> tuple[list[list[str]], list[LineError]]:
    """The data rows (from row 2), or a file-level error (row 0 or 1)."""
    if len(file) > MAX_BYTES:
        return [], [LineError(0, "file", f"larger than {MAX_BYTES} bytes")]
    try:
        text = file.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [LineError(0, "file", "not UTF-8")]
    if "\x00" in text:
        return [], [LineError(0, "file", "contains a NUL character")]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(c.strip() for c in rows[0]) != header:
        return [], [LineError(1, "header", "must be exactly: " + ",".join(header))]
    return rows[1:], []


def read_request(file: bytes) -> tuple[list[tuple[uuid.UUID, RequestLine]], list[LineError]]:
    """A request file read (the registry's side): (request id, line) per row."""
    rows, errors = _rows(file, REQUEST_HEADER)
    lines = []
    for row_number, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(REQUEST_HEADER):
            errors.append(LineError(row_number, "row", f"needs {len(REQUEST_HEADER)} fields"))
            continue
        found = _Row(row_number, dict(zip(REQUEST_HEADER, (c.strip() for c in row), strict=True)))
        request_id, line = found.uuid("request_id"), found.integer("line")
        bsn, point = found.bsn(), found.required("point")
        reference, observe_on = found.date("reference_date"), found.date("observe_on")
        errors += found.errors
        if not found.errors:
            lines.append((request_id, RequestLine(line, bsn, point, reference, observe_on)))
    return lines, errors


def read_answers(file: bytes) -> ParsedAnswers:
    """An answer file read: every row checked on its own (the application checks it
    against the request); what is wrong is listed per row and field."""
    rows, errors = _rows(file, ANSWER_HEADER)
    lines, count = [], 0
    for row_number, row in enumerate(rows, start=2):
        if not any(c.strip() for c in row):
            continue
        count += 1
        if len(row) != len(ANSWER_HEADER):
            errors.append(LineError(row_number, "row", f"needs {len(ANSWER_HEADER)} fields"))
            continue
        found = _Row(row_number, dict(zip(ANSWER_HEADER, (c.strip() for c in row), strict=True)))
        request_id, line, bsn = found.uuid("request_id"), found.integer("line"), found.bsn()
        employed, on_benefit = found.flag("employed"), found.flag("on_benefit")
        start, end = found.date("period_start"), found.date("period_end")
        employer_id = found.optional("employer_id")
        hours = found.hours()
        kind = found.optional("benefit_kind")
        if employed is True:
            if employer_id is None:
                found.error("employer_id", "required when employed")
            elif not EMPLOYER_ID.match(employer_id):
                found.error("employer_id", "must be the registry's employer number: a capital letter, "
                                           "then 1-31 capitals, digits or hyphens")
            if hours is None and "hours_per_week" not in found.failed:
                found.error("hours_per_week", "required when employed")
        elif employed is False:
            for name, value in (("employer_id", employer_id), ("hours_per_week", hours)):
                if value is not None:
                    found.error(name, "must be empty when not employed")
        if on_benefit is True and kind is None:
            found.error("benefit_kind", "required when on a benefit")
        elif on_benefit is True and kind not in BENEFIT_KINDS:
            found.error("benefit_kind", "must be one of " + ", ".join(BENEFIT_KINDS))
        elif on_benefit is False and kind is not None:
            found.error("benefit_kind", "must be empty when not on a benefit")
        if start and end and start > end:
            found.error("period_end", "must not be before period_start")
        for error in found.errors:
            errors.append(LineError(error.row, error.field, error.reason, line))
        if not found.errors:
            lines.append(AnswerLine(row_number, request_id, line, bsn, employed, employer_id, hours,
                                    start, end, on_benefit, kind))
    return ParsedAnswers(lines, errors, count)


class _Row:
    """One row's fields, checked one by one; the reasons collect in `errors`."""

    def __init__(self, row: int, fields: dict[str, str]) -> None:
        self.row, self.fields = row, fields
        self.errors: list[LineError] = []
        self.failed: set[str] = set()

    def error(self, name: str, reason: str) -> None:
        self.failed.add(name)
        self.errors.append(LineError(self.row, name, reason))

    def optional(self, name: str) -> str | None:
        return self.fields[name] or None

    def required(self, name: str) -> str:
        if not self.fields[name]:
            self.error(name, "required")
        return self.fields[name]

    def uuid(self, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(self.required(name))
        except ValueError:
            if self.fields[name]:
                self.error(name, "not a UUID")
            return uuid.UUID(int=0)

    def integer(self, name: str) -> int:
        value = self.required(name)
        if value and not (value.isdigit() and 1 <= int(value) <= 1_000_000):
            self.error(name, "must be a whole number from 1")
            return 0
        return int(value) if value else 0

    def bsn(self) -> str:
        value = self.required("bsn")
        if value and not is_valid_bsn(value):
            self.error("bsn", "not a valid BSN (9 digits passing the 11-test)")
        return value

    def flag(self, name: str) -> bool | None:
        value = self.required(name).lower()
        if value in ("true", "false"):
            return value == "true"
        if value:
            self.error(name, "must be true or false")
        return None

    def date(self, name: str) -> dt.date | None:
        value = self.required(name)
        try:
            return dt.date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else _bad()
        except ValueError:
            if value:
                self.error(name, "not a date (YYYY-MM-DD)")
            return None

    def hours(self) -> float | None:
        value = self.optional("hours_per_week")
        if value is None:
            return None
        try:
            hours = float(value) if re.fullmatch(r"\d{1,2}(\.\d{1,2})?", value) else _bad()
        except ValueError:
            self.error("hours_per_week", "must be a number of hours from 0 to 60 (e.g. 32 or 20.5)")
            return None
        if hours > 60:
            self.error("hours_per_week", "must be a number of hours from 0 to 60 (e.g. 32 or 20.5)")
            return None
        return hours


def _bad() -> dt.date:
    raise ValueError("malformed")


class FileExchangeRegistry:
    """`EmploymentRegistry` by file exchange: the caller carries the files to and from the
    registry (and the benefit administration); intake writes nothing to disk."""

    def request(self, request_id: uuid.UUID, lines: list[RequestLine]) -> bytes:
        return write_request(request_id, lines)

    def answers(self, file: bytes) -> ParsedAnswers:
        return read_answers(file)
