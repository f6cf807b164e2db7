"""The trajectory service's use cases, each a small class given what it needs (the
service's store, the write lock's command runner, a clock) by `trajectory.application`:

- `reference`: the tender's reference data, seeded once and changed by audited commands;
- `referrals`: what the service consumes (referrals, withdrawals, requests to reopen);
- `progress`: what providers report;
- `reading`: trajectories as their readers may see them;
- `desk`: providers assigned within capacity, following the service's own log;
- `notifications`: providers' subscriptions, the dispatcher and the delivery attempts.

Use cases take ids and primitives, return plain dicts (`trajectory.views`) and refuse
with the kinds of `contracts.problems`; none speaks HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Runs a command (load, decide, save) under the service's write lock, again on a version
# conflict with another process (`contracts.commands.retry_on_conflict`).
Write = Callable[[Callable[[], Any]], Any]
