"""What a request may cost before anyone knows who sent it: the caller is checked before
the body is read, and no body is read beyond the service's cap.

FastAPI reads and parses a request's body before it runs the route's dependencies, so the
bearer check of `contracts.web.auth` alone comes too late: an anonymous 100 MB body would
be buffered whole and then answered 422. This ASGI middleware runs before that, for every
route of the service:

- a route that needs a bearer credential (its dependencies include
  `contracts.web.auth.authenticated`) is refused with 401 problem+json, before a byte of
  the body is read, unless the request carries a token the service's own credential store
  knows (scopes are still checked by the route, after);
- a provider webhook (`contracts.web.webhooks.verified_webhook`) is authenticated by a
  signature over the body, so it can only be checked after reading; it is refused at once
  without its `webhook-id`, `webhook-timestamp` and `webhook-signature` headers, and its
  body is read only up to the cap (the webhook dependency has its own, smaller one);
- every body, on every route: a `Content-Length` above the cap is a 413 problem+json
  before reading, and a streamed (chunked) body is counted as it arrives and stopped with
  a 413 as soon as it passes the cap.

The cap is `contracts.limits.max_body_bytes` of the service.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.routing import Match

from contracts.limits import DEFAULT_MAX_BODY_BYTES
from contracts.web.problems import problem_response

log = logging.getLogger(__name__)

SIGNATURE_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")


class BodyTooLarge(HTTPException):
    """Raised from `receive` while a body is read: answered 413 (problem+json)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, "Body too large", headers={"Connection": "close"})
        self.cap = cap


def _guard(route: Any) -> tuple[str, Any] | None:
    """("bearer", credentials), ("signed", None) or None: what the route authenticates by."""
    dependant = getattr(route, "dependant", None)
    pending, seen = [dependant] if dependant is not None else [], set()
    signed = None
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        call = getattr(current, "call", None)
        if (credentials := getattr(call, "tweespoor_credentials", None)) is not None:
            return ("bearer", credentials)
        if getattr(call, "tweespoor_signed", False):
            signed = ("signed", None)
        pending.extend(getattr(current, "dependencies", ()))
    return signed


def _routes(routes: Any) -> Any:
    """Every route, with those of included routers (FastAPI includes them lazily, as
    groups of effective routes with the prefix applied)."""
    for route in routes:
        effective = getattr(route, "effective_candidates", None)
        if callable(effective):
            yield from _routes(effective())
        else:
            yield route


class RequestLimits:
    """ASGI middleware: the caller first, then at most `max_body_bytes` of body."""

    def __init__(self, app: Any, *, api: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.api = api  # the FastAPI app, for its routes (added after the middleware, too)
        self.max_body_bytes = max_body_bytes
        self._guards: dict[int, tuple[Any, tuple[str, Any] | None]] = {}

    def _guard_for(self, scope: dict[str, Any]) -> tuple[str, Any] | None:
        for route in _routes(self.api.router.routes):
            match, child = route.matches(scope)
            if match is Match.FULL:
                # Named as the router would name it, so a refusal here is traced and
                # written to the processing log like any other answer of the route.
                scope.setdefault("route", route)
                scope.setdefault("path_params", child.get("path_params", {}))
                if id(route) not in self._guards:  # the route is kept, so its id stays its own
                    self._guards[id(route)] = (route, _guard(getattr(route, "original_route", route)))
                return self._guards[id(route)][1]
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        cap, read, started = self.max_body_bytes, 0, False

        async def counted() -> dict[str, Any]:
            nonlocal read
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > cap:
                    log.info("body_too_large", extra={"path": scope.get("path"), "cap": cap})
                    raise BodyTooLarge(cap)
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(cap)(scope, receive, send)

    def _refusal(self, scope: dict[str, Any], headers: dict[bytes, bytes]) -> Any:
        guard = self._guard_for(scope)
        if guard is not None and guard[0] == "bearer":
            scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip() or guard[1].authenticate(token.strip()) is None:
                return problem_response(401, "Unauthorized", "A valid bearer token is required.",
                                        headers={"WWW-Authenticate": "Bearer", "Connection": "close"})
        elif guard is not None and guard[0] == "signed":
            if not all(headers.get(name) for name in SIGNATURE_HEADERS):
                return problem_response(401, "Invalid webhook signature", "Missing signature headers",
                                        headers={"Connection": "close"})
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            return _too_large(self.max_body_bytes)
        return None


def _too_large(cap: int) -> Any:
    return problem_response(413, "Body too large", f"At most {cap} bytes.",
                            headers={"Connection": "close"})


def install(api: Any, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Adds the request limits to a FastAPI app (before its other middleware runs)."""
    api.add_middleware(RequestLimits, api=api, max_body_bytes=max_body_bytes)
