"""Signed HTTP between Tweespoor and the providers: Standard Webhooks both ways.

`webhook-id`, `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 over
id.timestamp.body with the provider's secret); a timestamp more than five minutes off is
refused, and so is a body too large or not JSON. Verification happens before anything
is parsed or stored. The trajectory and coaching services receive provider reports this
way (the route's dependency is `contracts.web.webhooks.verified_webhook`), and trajectory
signs its outgoing notifications the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from standardwebhooks import Webhook

from contracts.access import Principal
from contracts.problems import Problem

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookMessage:
    """A verified message from a provider: who sent it, its id, and its JSON body."""

    provider: Principal
    id: str
    body: bytes
    payload: Any


def sign(secret: str, body: bytes, *, msg_id: str | None = None,
         timestamp: dt.datetime | None = None) -> dict[str, str]:
    """The three headers for `body`, as a sender puts them on a request."""
    msg_id = msg_id or f"msg_{uuid4().hex}"
    timestamp = timestamp or dt.datetime.now(dt.UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, timestamp, body.decode()),
        "content-type": "application/json",
    }


def verify(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """The parsed body when the signature and timestamp hold; a 401 problem otherwise."""
    try:
        return Webhook(secret).verify(body, headers)
    except json.JSONDecodeError:
        raise Problem(422, "Invalid body", "The body is not JSON.") from None
    except Exception as error:  # any malformed header is the same answer: not verified
        reason = str(error) if type(error).__name__ == "WebhookVerificationError" else "Malformed signature headers"
        raise Problem(401, "Invalid webhook signature", reason) from None
