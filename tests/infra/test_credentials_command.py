"""`tweespoor credentials` writes what docker compose mounts into the services."""

from __future__ import annotations

import stat
import tomllib

from contracts.access import Credentials
from infra.cli import main


def test_the_written_tokens_authenticate_against_the_written_hashes(tmp_path):
    assert main(["credentials", "--directory", str(tmp_path), "--shared"]) == 0
    credentials = Credentials.from_file(tmp_path / "credentials.toml")
    tokens = tomllib.loads((tmp_path / "tokens.toml").read_text())
    assert tokens, "no demo credentials written"
    for credential_id, token in tokens.items():
        principal = credentials.authenticate(token)
        assert principal is not None and principal.id == credential_id
    assert credentials.authenticate("not-a-token") is None
    # Containers run as another user and must read the hashes; the tokens stay private.
    assert stat.S_IMODE((tmp_path / "credentials.toml").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "tokens.toml").stat().st_mode) == 0o600


def test_without_shared_both_files_are_the_user_s_own(tmp_path):
    assert main(["credentials", "--directory", str(tmp_path)]) == 0
    for name in ("credentials.toml", "tokens.toml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
