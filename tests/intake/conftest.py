"""Fixtures of intake's tests over the real broker."""

from __future__ import annotations

import pytest

from contracts.access import Credentials
from infra.demo import write_credentials


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    """The demo's credentials: the store intake reads, and a token per client."""
    path, tokens = write_credentials(tmp_path_factory.mktemp("config"))
    return Credentials.from_file(path), tokens
