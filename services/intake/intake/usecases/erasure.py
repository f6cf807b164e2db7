"""Erasure: a person's data made unreadable everywhere at once (their key deleted) with the
erasure on record, on request or when their files' retention has ended."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

from contracts.access import Principal
from contracts.commands import retries_on_conflict
from intake.config import IntakeConfig
from intake.domain import ClientFile, Referral
from intake.lbu import JobOffer
from intake.privacy import Vault
from intake.usecases.referrals import referral_for
from intake.usecases.stored import originators


class Erasure:
    def __init__(self, store: Any, *, config: IntakeConfig, vault: Vault,
                 clock: Callable[[], dt.date]) -> None:
        self.store, self.config, self.vault, self.clock = store, config, vault, clock

    def erase_person_of(self, referral_id: uuid.UUID, caller: Principal, *, reason: str) -> dict[str, Any]:
        """Erases the person a referral is about, in all their referrals and offers."""
        referral = referral_for(self.store.repository, referral_id, caller)
        return self.erase(referral.client_id, reason=reason)

    @retries_on_conflict("client file")
    def erase(self, client_id: uuid.UUID, *, reason: str) -> dict[str, Any]:
        """Records the erasure, then deletes the person's key (again, if a crash came
        between the two: the record is what makes it happen)."""
        file: ClientFile = self.store.repository.get(ClientFile.create_id(client_id))
        if file.erased_on is None:
            file.erase(self.clock(), reason)
            self.store.save(file)
        self.vault.keys.shred(client_id)
        return {"client_id": str(client_id), "erased_on": file.erased_on.isoformat(),
                "reason": file.reason, "referrals_and_offers": len(file.entries)}

    def erase_expired(self) -> int:
        """The retention job: people whose every referral and offer has been closed for
        longer than its programme's retention (and past the ESF date) are erased."""
        today, erased = self.clock(), 0
        if self.config.esf_retention_until and today <= self.config.esf_retention_until:
            return 0
        years = dict(self.config.retention_years)
        for file_id in originators(self.store, ClientFile.Opened):
            file: ClientFile = self.store.repository.get(file_id)
            if file.erased_on is not None:
                self.vault.keys.shred(file.client_id)  # finish an erasure a crash interrupted
                continue
            ends = [self._retained_until(uuid.UUID(a), e["programme"], years) for a, e in file.entries.items()]
            if ends and all(end is not None and end < today for end in ends):
                self.erase(file.client_id, reason="retention-ended")
                erased += 1
        return erased

    def _retained_until(self, aggregate_id: uuid.UUID, programme: str, years: dict[str, int]) -> dt.date | None:
        """None while the referral or offer is still open; else its last day of retention."""
        item = self.store.repository.get(aggregate_id)
        if isinstance(item, Referral) and item.is_open:
            return None
        if isinstance(item, JobOffer) and item.state in ("offered", "refused"):
            return None
        last = item.history[-1][1]
        return last.replace(year=last.year + years.get(programme, 7), day=min(last.day, 28))
