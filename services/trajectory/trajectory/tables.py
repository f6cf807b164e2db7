"""The trajectory service's side table (`contracts.sidetables`): the secrets providers give
with their subscriptions, beside the event store, not in it.

Events are kept forever; a secret must be replaceable and removable. So a subscription's
events name no secret, and the secret sits in `webhook_secrets (subscription_id, secret)`
in the service's database (SQLite or PostgreSQL; memory when the store is), deleted when
the subscription is cancelled.
"""

from __future__ import annotations

import uuid
from typing import Any

from contracts.sidetables import SideTable


class WebhookSecrets:
    """A subscription's secret by its id (a `usecases.notifications.SecretStore`)."""

    def __init__(self, table: SideTable) -> None:
        self._table = table

    def put(self, subscription_id: uuid.UUID, secret: str) -> None:
        self._table.put(str(subscription_id), secret)

    def get(self, subscription_id: uuid.UUID) -> str | None:
        return self._table.get(str(subscription_id))

    def delete(self, subscription_id: uuid.UUID) -> None:
        self._table.delete(str(subscription_id))


def webhook_secrets(recorder: Any) -> WebhookSecrets:
    return WebhookSecrets(SideTable(recorder, "webhook_secrets", "subscription_id", "secret"))
