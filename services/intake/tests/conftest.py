import datetime as dt

import pytest
from fastapi.testclient import TestClient

from contracts.access import Credentials
from infra.demo import write_credentials
from intake.api import create_api
from intake.application import IntakeApplication, IntakeConfig


class Clock:
    """An injectable today."""

    def __init__(self, today: dt.date) -> None:
        self.today = today

    def __call__(self) -> dt.date:
        return self.today


@pytest.fixture
def clock():
    return Clock(dt.date(2026, 11, 23))


@pytest.fixture
def app(clock):
    return IntakeApplication({"PERSISTENCE_MODULE": "eventsourcing.popo"},
                             config=IntakeConfig(pseudonym_key=b"test"), clock=clock)


@pytest.fixture(scope="session")
def credentials(tmp_path_factory):
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), tokens


@pytest.fixture
def tokens(credentials):
    return credentials[1]


@pytest.fixture
def client(app, credentials):
    return TestClient(create_api(app, credentials[0]))


def auth(tokens, credential="alkmaar-case-system"):
    return {"Authorization": f"Bearer {tokens[credential]}"}
