"""Each municipality's coaching policy: the check-in weeks and the grace period.

From the environment, so that a municipality changes its schedule without a release:

    COACHING_CHECK_IN_WEEKS=2,6,13,26,39,52      the default for every municipality
    COACHING_CHECK_IN_WEEKS_ALKMAAR=2,4,8,13,26,39,52
    COACHING_GRACE_DAYS=7                        days after a due date before overdue
    COACHING_GRACE_DAYS_HEILOO=14
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.municipalities import MUNICIPALITIES
from coaching.schedule import DEFAULT_CHECK_IN_WEEKS, DEFAULT_GRACE_DAYS, check_weeks

MAX_GRACE_DAYS = 60


@dataclass(frozen=True)
class CoachingPolicy:
    check_in_weeks: tuple[int, ...] = DEFAULT_CHECK_IN_WEEKS
    grace_days: int = DEFAULT_GRACE_DAYS

    def __post_init__(self) -> None:
        object.__setattr__(self, "check_in_weeks", check_weeks(self.check_in_weeks))
        if not 0 <= self.grace_days <= MAX_GRACE_DAYS:
            raise ValueError(f"the grace period must lie between 0 and {MAX_GRACE_DAYS} days")


@dataclass(frozen=True)
class Policies:
    """The default policy, and the municipalities that chose their own."""

    default: CoachingPolicy = CoachingPolicy()
    per_municipality: Mapping[str, CoachingPolicy] = field(default_factory=dict)

    def of(self, municipality: str) -> CoachingPolicy:
        return self.per_municipality.get(municipality, self.default)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Policies:
        default = CoachingPolicy(
            _weeks(env, "COACHING_CHECK_IN_WEEKS") or DEFAULT_CHECK_IN_WEEKS,
            _days(env, "COACHING_GRACE_DAYS", DEFAULT_GRACE_DAYS),
        )
        own: dict[str, CoachingPolicy] = {}
        for municipality in MUNICIPALITIES:
            suffix = municipality.upper()
            weeks = _weeks(env, f"COACHING_CHECK_IN_WEEKS_{suffix}")
            grace = env.get(f"COACHING_GRACE_DAYS_{suffix}")
            if weeks or grace:
                own[municipality] = CoachingPolicy(
                    weeks or default.check_in_weeks,
                    _days(env, f"COACHING_GRACE_DAYS_{suffix}", default.grace_days),
                )
        return cls(default, own)


def _weeks(env: Mapping[str, str], name: str) -> tuple[int, ...] | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        return check_weeks([int(part) for part in value.split(",")])
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _days(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ValueError(f"{name}: a whole number of days")
    return int(value)
