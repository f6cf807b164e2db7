"""What an intake installation decides for itself: the pseudonym key, the municipalities
with Focus2Move, the LBU response period and how long files are kept."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from intake.lbu import DEFAULT_RESPONSE_WEEKS


@dataclass(frozen=True)
class IntakeConfig:
    pseudonym_key: bytes
    focus2move_municipalities: frozenset[str] = frozenset({"alkmaar"})
    lbu_response_weeks: int = DEFAULT_RESPONSE_WEEKS
    # Years a closed file is kept, per programme, before the person is erased on its own.
    retention_years: tuple[tuple[str, int], ...] = (
        ("social-activation", 7), ("reintegration", 7), ("focus2move", 7), ("lbu", 7))
    # ESF files are kept at least until the end of the period's retention date.
    esf_retention_until: dt.date | None = None
