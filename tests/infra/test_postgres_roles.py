"""PostgreSQL least privilege: each service connects as its own role, which owns its own
database and nothing else. On a server that asks every TCP client for a password (without
which one role could simply log in as another), a service's role makes its own store, is
no superuser, and can neither open another service's database nor log in as another."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from contracts.service import store_env
from infra.postgres import LocalPostgres, ensure_installed, provision_service
from intake.application import IntakeApplication, IntakeConfig, ReferralInput
from intake.privacy import Person
from trajectory.application import TrajectoryApplication

pytestmark = pytest.mark.postgres

PASSWORDS = {"intake": "intake-pw-1", "trajectory": "trajectory-pw-2"}


@pytest.fixture(scope="module")
def server() -> Iterator[LocalPostgres]:
    ensure_installed()
    with LocalPostgres(auth="scram-sha-256") as server:  # its own temporary dir (root: see test_local_postgres)
        yield server


@pytest.fixture(scope="module")
def urls(server: LocalPostgres) -> dict[str, str]:
    return {name: provision_service(server.url(), name, password) for name, password in PASSWORDS.items()}


def with_password(url: str, password: str) -> str:
    user, rest = url.removeprefix("postgresql://").split("@", 1)
    return f"postgresql://{user.split(':')[0]}:{password}@{rest}"


def test_the_server_asks_for_a_password(server: LocalPostgres) -> None:
    assert server.superuser_password and server.superuser_password in server.url()
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(server.url().replace(f":{server.superuser_password}@", "@"), connect_timeout=10)


def test_each_service_role_creates_and_uses_its_own_store(server: LocalPostgres, urls: dict[str, str]) -> None:
    assert urls["intake"] == (f"postgresql://tweespoor_intake:{PASSWORDS['intake']}@127.0.0.1:{server.port}"
                              "/tweespoor_intake")
    intake = IntakeApplication(store_env(urls["intake"]), config=IntakeConfig(pseudonym_key=b"k"))
    try:
        created = intake.refer(ReferralInput(
            person=Person("111222333", "Kees Ketting", dt.date(1979, 5, 5)), municipality="alkmaar",
            programme="focus2move", benefit="bijstand", uwv_registered_on=None,
            distance_to_labour_market="large", referred_on=dt.date(2026, 11, 2), caseworker_id="cw"))[1]
        assert intake.verify_chain(uuid.UUID(created["referral_id"])).intact
    finally:
        intake.close()
    TrajectoryApplication(store_env(urls["trajectory"])).close()
    for name, url in urls.items():
        with psycopg.connect(url) as conn:
            owners = {owner for (owner,) in conn.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
            database_owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").fetchone()
        assert owners == {f"tweespoor_{name}"}, owners  # the tables are there, and the role's
        assert database_owner == (f"tweespoor_{name}",)


def test_a_role_cannot_open_another_service_database(urls: dict[str, str]) -> None:
    for own, other in (("intake", "trajectory"), ("trajectory", "intake")):
        into_other = urls[own].rsplit("/", 1)[0] + f"/tweespoor_{other}"  # its own login, the other's store
        with pytest.raises(psycopg.OperationalError, match="CONNECT privilege"):
            psycopg.connect(into_other, connect_timeout=10)


def test_a_role_cannot_log_in_with_another_service_password(urls: dict[str, str]) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(with_password(urls["intake"], PASSWORDS["trajectory"]), connect_timeout=10)


def test_a_service_role_is_no_superuser_and_may_not_make_roles_or_databases(urls: dict[str, str]) -> None:
    with psycopg.connect(urls["intake"]) as conn:
        flags = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
                             "WHERE rolname = current_user").fetchone()
        assert flags == (False, False, False, False)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE intruder LOGIN")


def test_provisioning_again_sets_the_new_password(server: LocalPostgres, urls: dict[str, str]) -> None:
    again = provision_service(server.url(), "intake", "intake-pw-new")
    try:
        with psycopg.connect(again) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] > 0
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(urls["intake"], connect_timeout=10)
    finally:
        provision_service(server.url(), "intake", PASSWORDS["intake"])


def test_store_env_refuses_a_url_with_a_query_string() -> None:
    with pytest.raises(ValueError, match="PGSSLMODE") as refused:
        store_env("postgresql://tweespoor_intake:secret@db.example:5432/tweespoor_intake?sslmode=verify-full")
    assert "PGSSLROOTCERT" in str(refused.value) and "secret" not in str(refused.value)
    assert store_env("postgresql://u:p@h:5432/d")["POSTGRES_DBNAME"] == "d"
