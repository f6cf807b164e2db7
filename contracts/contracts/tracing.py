"""W3C Trace Context: one trace from an HTTP request through every service it causes work in.

A span is one piece of processing (an HTTP request, one Kafka record applied). The current
span lives in a context variable, so that what a service records while handling it is
stamped with it (see `contracts.actors`) and the outbox relay can put it on Kafka as a
`traceparent` header; a consumer continues the trace with a child span.

`traceparent` is parsed by the W3C rules (version-traceid-parentid-flags, lowercase hex,
no all-zero ids, version ff invalid); a malformed one is replaced by a fresh trace, never
answered with an error. The HTTP middleware returns the request's own span in the
response's `traceparent` header and writes a processing-log record (`contracts.processing`)
for every request that reached a route.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import hashlib
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contracts.processing import Record

log = logging.getLogger(__name__)

HEADER = "traceparent"
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True)
class Span:
    """The current piece of processing: its trace, its own id and the span that caused it."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    flags: str = "01"

    @property
    def traceparent(self) -> str:
        """What a caller or a downstream consumer receives: this span as their parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def child(self) -> Span:
        return Span(self.trace_id, _new_span_id(), self.span_id, self.flags)


def parse(header: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent span id, flags) of a valid `traceparent`, else None."""
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header.strip(" \t"))  # optional whitespace, as HTTP allows
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    # Version ff is forbidden; version 00 has exactly four fields; later versions may add
    # fields after a dash, which we ignore as the spec asks.
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, flags


def fresh() -> Span:
    """The root span of a new trace (sampled)."""
    return Span(secrets.token_hex(16), _new_span_id())


def continue_from(header: str | None) -> Span:
    """A new span in the trace `header` names, or the root of a fresh one if it names none."""
    parsed = parse(header)
    if parsed is None:
        return fresh()
    trace_id, parent, flags = parsed
    return Span(trace_id, _new_span_id(), parent, flags)


def derived(seed: str) -> str:
    """A stable `traceparent` for something recorded before tracing existed (the same
    stored event published twice gets the same one)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def _new_span_id() -> str:
    span_id = secrets.token_hex(8)
    return span_id if span_id != _ZERO_SPAN else _new_span_id()


_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar("tweespoor_span", default=None)


def current() -> Span | None:
    return _current.get()


@contextlib.contextmanager
def within(span: Span) -> Iterator[Span]:
    """Makes `span` the current one for the code inside (and threads started from it)."""
    token = _current.set(span)
    try:
        yield span
    finally:
        _current.reset(token)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


# Path parameters that name a pseudonymous subject, in the order they are preferred.
SUBJECT_PARAMETERS = ("trajectory_id", "plan_id", "referral_id", "offer_id")
UNLOGGED_PATHS = frozenset({"/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"})


class TraceMiddleware:
    """ASGI middleware: a span per HTTP request, continued from the caller's `traceparent`
    (or fresh), returned in the response's `traceparent`, and put in the processing log."""

    def __init__(self, app: Any, *, system: str, processing_log: Any = None) -> None:
        self.app = app
        self.system = system
        self.processing_log = processing_log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k.lower() == b"traceparent"), None)
        span = continue_from(header)
        started, status = now(), 500

        async def send_traced(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"traceparent", span.traceparent.encode())]}
            await send(message)

        try:
            with within(span):
                await self.app(scope, receive, send_traced)
        finally:
            await self._log(scope, span, status, started)

    async def _log(self, scope: dict[str, Any], span: Span, status: int, started: str) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if self.processing_log is None or path is None or path in UNLOGGED_PATHS:
            return  # no route, no processing
        params = scope.get("path_params") or {}
        subject = next(((name.removesuffix("_id"), str(params[name])) for name in SUBJECT_PARAMETERS
                        if name in params), (None, None))
        record = Record(trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
                        activity_id=f"{self.system}:{scope['method']} {path}", service=self.system,
                        status="ok" if status < 400 else "error", subject_type=subject[0],
                        subject_id=subject[1], started_at=started, ended_at=now())
        try:
            await asyncio.to_thread(self.processing_log.record, record)
        except Exception:  # the answer is given; a log outage must not turn it into a 500
            log.exception("processing_log_failed", extra={"trace_id": span.trace_id})


def install(api: Any, *, system: str, processing_log: Any = None) -> None:
    """Adds the trace middleware to a FastAPI app."""
    api.add_middleware(TraceMiddleware, system=system, processing_log=processing_log)
