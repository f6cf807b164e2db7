"""Per-person keys in the real stores: sealed data opens until the key is shredded."""

import datetime as dt
import uuid

from contracts.service import store_env
from intake.application import IntakeApplication, IntakeConfig
from intake.privacy import Person


def test_a_shredded_key_makes_the_person_unreadable_in_sqlite_and_postgres(database_url):
    url = database_url("keys")
    app = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"))
    person, client = Person("111222333", "Eva Sleutel", dt.date(1984, 2, 29)), uuid.uuid4()
    sealed = app.vault.seal(client, person)
    assert "111222333" not in sealed and "Sleutel" not in sealed
    app.close()

    reopened = IntakeApplication(store_env(url), config=IntakeConfig(pseudonym_key=b"k"))
    assert reopened.vault.open(client, sealed) == person  # the key outlives the process
    assert reopened.vault.open(uuid.uuid4(), sealed) is None  # bound to its client id
    assert reopened.vault.keys.shred(client) is True
    assert reopened.vault.open(client, sealed) is None
    assert reopened.vault.keys.shred(client) is False
    reopened.close()
