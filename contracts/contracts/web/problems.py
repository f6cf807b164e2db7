"""The HTTP edge of `contracts.problems`: every error a service's FastAPI app meets is
answered with a problem+json document; an unavailable store or broker is a 503 with
Retry-After, and nothing unexpected becomes a bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import KafkaError
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from contracts.chain import IntegrityViolation
from contracts.problems import INTEGRITY_VIOLATION, INVALID_DETAIL, MEDIA_TYPE, Problem

log = logging.getLogger(__name__)

# What each refusal means on an API, as its OpenAPI document says it; a service words one
# differently by passing its own (`responses(403, described={403: "..."})`).
DESCRIPTIONS: dict[int, str] = {
    401: "No valid bearer token",
    403: "The credential lacks the scope",
    404: "Unknown, or not yours to see",
    409: "Does not fit the current state: the state and the allowed next steps are named",
    410: "Gone for good",
    413: "The body is too large",
    415: "Send application/json",
    422: "A field is invalid (named, with the reason; values are never echoed)",
    503: "The store is unavailable; retry after Retry-After",
}


def problem_response(status: int, title: str, detail: str | None = None, *,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = Problem(status, title, detail, **extra).document()
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Routes every error of `app` to a problem document."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, headers=exc.headers,
                                **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
             "reason": e["msg"]}
            for e in exc.errors()
        ]
        return problem_response(422, "Invalid request", INVALID_DETAIL, errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("store_unavailable", extra={"error": type(exc).__name__})
        return problem_response(503, "Store unavailable", "Try again shortly.",
                                headers={"Retry-After": "5"})

    @app.exception_handler(IntegrityError)
    async def _unretried_conflict(_: Request, exc: Exception) -> JSONResponse:
        # Every command retries a version conflict (contracts.commands) and ends in a Busy
        # problem; one that escaped the rule is still a 503 to retry, never a 500.
        log.error("conflict_not_retried", extra={"error": type(exc).__name__})
        return problem_response(503, "Busy", "The record changed while this was decided; try again.",
                                headers={"Retry-After": "1"})

    @app.exception_handler(IntegrityViolation)
    async def _tampered(_: Request, exc: IntegrityViolation) -> JSONResponse:
        # Logged where it was found (service, stream, version); never served, never built on.
        return problem_response(503, "Integrity violation",
                                "Stored state does not match its hash chain; it is not served and "
                                "nothing is built on it. The service, stream and version were logged.",
                                type=INTEGRITY_VIOLATION, service=exc.service, stream=exc.stream,
                                version=exc.version)

    @app.exception_handler(KafkaError)
    async def _broker_down(_: Request, exc: Exception) -> JSONResponse:
        # Only reads go to Kafka from a request (the auditors' replay); writes go to the outbox.
        log.warning("broker_unavailable", extra={"error": type(exc).__name__})
        return problem_response(503, "Event log unavailable", "Kafka cannot be reached; try again shortly.",
                                headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected_error", extra={"error": type(exc).__name__})
        return problem_response(500, "Internal error", "The error was logged.")


def responses(*codes: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that may refuse with `codes`: each a problem+json
    document, described as `described` says or else as `DESCRIPTIONS` does."""
    wording = {**DESCRIPTIONS, **(described or {})}
    return {code: {"description": wording[code], "content": {MEDIA_TYPE: {}}} for code in codes}
