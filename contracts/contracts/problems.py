"""RFC 9457 problem details: what a use case refuses with, and why, as plain exceptions.

Use cases raise the kind (`NotFound`, `Conflict`, `Invalid`, `Forbidden`, `Gone`, `Busy`);
the HTTP edge (`contracts.web.problems`) answers each with a problem+json document. A kind
carries the status of its document, so a use case never picks a number and the edge
never needs a table of them. Validation errors name the field and the reason but never
echo the value sent (it may be a BSN or a name).
"""

from __future__ import annotations

from typing import Any

MEDIA_TYPE = "application/problem+json"
# Stored state that does not match its hash chain, seal or signed checkpoint (contracts.chain).
INTEGRITY_VIOLATION = "urn:tweespoor:problem:integrity-violation"
INVALID_DETAIL = "One or more fields are invalid."
RETRY_AFTER = "1"  # seconds a client is asked to wait after a Busy


class Problem(Exception):
    """A refusal answered with a problem document; the kinds below are what use cases
    raise, the status given here only by the HTTP edge (401, 413, 415)."""

    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra
        self.headers = headers

    def document(self) -> dict[str, Any]:
        """The RFC 9457 body."""
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        body.update(self.extra)
        return body


class NotFound(Problem):
    """What was asked for does not exist (or is not the caller's to know of)."""

    def __init__(self, what: str, detail: str | None = None) -> None:
        super().__init__(404, f"{what} not found", detail)


class Forbidden(Problem):
    def __init__(self, title: str = "Forbidden", detail: str | None = None) -> None:
        super().__init__(403, title, detail)


class Gone(Problem):
    """It existed and was removed for good (an erased person)."""

    def __init__(self, title: str, detail: str | None = None, **extra: Any) -> None:
        super().__init__(410, title, detail, **extra)


class Conflict(Problem):
    """The state of what was asked about does not allow it (`state`, `allowed`, ... say why)."""

    def __init__(self, title: str = "Conflict", detail: str | None = None, **extra: Any) -> None:
        super().__init__(409, title, detail, **extra)


class Invalid(Problem):
    """One or more given fields cannot be right: each as {"field", "reason"}, never the value."""

    def __init__(self, errors: list[dict[str, str]], title: str = "Invalid request",
                 detail: str | None = INVALID_DETAIL) -> None:
        super().__init__(422, title, detail, errors=errors)

    @classmethod
    def field(cls, field: str, reason: str, **kwargs: Any) -> Invalid:
        return cls([{"field": field, "reason": reason}], **kwargs)


class Busy(Problem):
    """A command that kept losing to other writers of the same aggregates: try again."""

    def __init__(self, what: str = "record") -> None:
        super().__init__(503, "Busy", f"The {what} kept changing while this was decided; try again.",
                         headers={"Retry-After": RETRY_AFTER})
        self.what = what
