"""Made-up people for tests that post referrals in bulk."""

from __future__ import annotations

import random


def made_up_bsns(count: int, rng: random.Random) -> list[str]:
    """Distinct made-up nine-digit numbers that pass the 11-test."""
    found: dict[str, None] = {}
    while len(found) < count:
        digits = [rng.randrange(1, 10)] + [rng.randrange(10) for _ in range(7)]
        last = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if last < 10:
            found["".join(map(str, digits)) + str(last)] = None
    return list(found)
