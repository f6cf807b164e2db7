"""What a request may cost before anyone knows who sent it: the body cap of each service.

The cap is a setting per service, `<SERVICE>_MAX_BODY_BYTES`, default 1 MiB: the largest
body any route takes is a referral or a job offer (about 1 KB), a provider's report (at
most 64 KiB, `contracts.webhooks`) or a contract command, so 1 MiB is ample headroom,
while the memory a request may pin is bounded (a worker pool of 40 threads holds at most
40 MiB of bodies). `contracts.web.limits` enforces it, and checks the caller first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def max_body_bytes(service: str, env: Mapping[str, str] | None = None) -> int:
    """The body cap of `service`: `<SERVICE>_MAX_BODY_BYTES`, else 1 MiB."""
    value = (os.environ if env is None else env).get(f"{service.upper()}_MAX_BODY_BYTES")
    if not value:
        return DEFAULT_MAX_BODY_BYTES
    cap = int(value)
    if cap <= 0:
        raise ValueError(f"{service.upper()}_MAX_BODY_BYTES must be a positive number of bytes")
    return cap
