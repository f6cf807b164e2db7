"""Sending the webhooks out: a background job of the service process.

Each round schedules deliveries for newly recorded events (`dispatch`), then makes the
attempts that are due, signed with the subscription's secret (Standard Webhooks, the
same scheme providers use towards us), and records each attempt. A 2xx answer delivers;
anything else — another status, a refused connection, a timeout — is tried again later
until the backoff gives up and the delivery is dead-lettered. Redirects are not followed:
a callback URL is what the provider registered, nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from typing import Protocol

import httpx

from contracts.health import Readiness
from contracts.rounds import run_rounds
from contracts.wakeup import Wakeup
from contracts.webhooks import sign
from trajectory.usecases.notifications import DISPATCH_BATCH, DeliveryJob

log = logging.getLogger(__name__)


class Deliveries(Protocol):
    """What the sender needs of the service (`TrajectoryApplication` is one)."""

    recorded: Wakeup

    def clock(self) -> dt.datetime: ...
    def dispatch(self) -> int: ...
    def due_deliveries(self, now: dt.datetime, limit: int) -> list[DeliveryJob]: ...
    def record_attempt(self, delivery_id: uuid.UUID, *, at: dt.datetime, status_code: int | None,
                       error: str | None, duration_ms: int) -> str: ...


class WebhookSender:
    """Delivers due notifications, at least once, with backoff (see `subscriptions.Backoff`)."""

    def __init__(self, app: Deliveries, *, timeout: float = 10.0, interval: float = 0.5,
                 batch: int = 20, settle: float = 0.25, readiness: Readiness | None = None) -> None:
        self.app = app
        self.readiness = readiness
        self.timeout = timeout
        self.interval = interval  # how often due retries and other processes' events are looked for
        self.batch = batch
        self.settle = settle  # after a commit woke it: at load, a few rounds a second, not one per commit
        self.caught_up = True  # whether the last round left nothing for the next

    async def run(self) -> None:
        """Runs until cancelled; a store that is away is waited for, not given up on. What
        this process records is dispatched at once, the rest within `interval`."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            async def round_() -> bool:
                await self.run_once(client)
                return self.caught_up

            await run_rounds(round_, name="webhook_sender", interval=self.interval, wakeup=self.app.recorded,
                             settle=self.settle, readiness=self.readiness)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One round: schedule what is new, send what is due; returns how much it did."""
        scheduled = await asyncio.to_thread(self.app.dispatch)
        jobs = await asyncio.to_thread(self.app.due_deliveries, self.app.clock(), self.batch)
        await asyncio.gather(*(self.send(client, job) for job in jobs))
        self.caught_up = scheduled < DISPATCH_BATCH and len(jobs) < self.batch
        return scheduled + len(jobs)

    async def send(self, client: httpx.AsyncClient, job: DeliveryJob) -> str:
        at = self.app.clock()
        headers = sign(job.secret, job.body, msg_id=job.message_id, timestamp=at)
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(job.callback_url, content=job.body, headers=headers)
            status_code = response.status_code
        except httpx.TimeoutException:
            error = "timeout"
        except httpx.HTTPError as failure:  # refused, reset, unresolvable: the class says enough
            error = type(failure).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        return await asyncio.to_thread(self.app.record_attempt, job.delivery_id, at=at,
                                       status_code=status_code, error=error, duration_ms=duration_ms)
