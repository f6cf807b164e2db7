"""The HTTP edge of `contracts.webhooks`: a provider's signed request is read (at most
`MAX_BODY_BYTES`, JSON only) and verified before the route sees it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request

from contracts.access import Credentials
from contracts.problems import Problem
from contracts.webhooks import MAX_BODY_BYTES, WebhookMessage, verify


def verified_webhook(credentials: Credentials):
    """A FastAPI dependency for `/providers/{provider}/...` routes: the verified message."""

    async def dependency(
        request: Request,
        provider: Annotated[str, Path(description="The provider's name as contracted", max_length=80)],
    ) -> WebhookMessage:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise Problem(415, "Unsupported media type", "Send application/json.")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            raise Problem(413, "Body too large", f"At most {MAX_BODY_BYTES} bytes.")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise Problem(413, "Body too large", f"At most {MAX_BODY_BYTES} bytes.")
        principal = credentials.provider(provider)
        if principal is None or not principal.webhook_secret:
            raise Problem(401, "Invalid webhook signature", "Unknown sender.")
        payload = verify(principal.webhook_secret, body, dict(request.headers))
        return WebhookMessage(principal, request.headers["webhook-id"], body, payload)

    dependency.tweespoor_signed = True  # type: ignore[attr-defined]  # contracts.web.limits: signed route
    return dependency
