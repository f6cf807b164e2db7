"""Intake's table beside its event store: each person's key, in `person_keys (client_id,
key_b64)`, where it can be deleted (events never are). In memory when the store is."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from contracts.sidetables import SideTable
from intake.privacy import new_key


class PersonKeys:
    """The key store (`intake.privacy.KeyStore`) of one service: AES-256 keys, base64."""

    def __init__(self, recorder: Any) -> None:
        self._table = SideTable(recorder, "person_keys", "client_id", "key_b64")

    def key(self, client_id: uuid.UUID, *, create: bool) -> bytes | None:
        if create:  # two writers at once agree on the first key
            value = self._table.put_new(str(client_id), base64.b64encode(new_key()).decode())
        else:
            value = self._table.get(str(client_id))
        return base64.b64decode(value) if value is not None else None

    def shred(self, client_id: uuid.UUID) -> bool:
        return self._table.delete(str(client_id))

