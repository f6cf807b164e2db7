"""The local PostgreSQL server that infra/ runs with initdb and pg_ctl."""

from __future__ import annotations

import psycopg
import pytest

from infra.kafka import port_open
from infra.postgres import LocalPostgres, find_bin_dir

pytestmark = pytest.mark.postgres


def test_bin_dir_is_found() -> None:
    bin_dir = find_bin_dir()
    assert bin_dir is not None and (bin_dir / "initdb").exists()


def test_local_postgres_databases_restart_and_crash() -> None:
    # Its own temporary dir: pytest's tmp_path is private to root, which the postgres
    # system user (used when the tests run as root) could not enter.
    # synchronous_commit on: with the default (off) a kill loses the newest commits.
    server = LocalPostgres(settings={"synchronous_commit": "on"})
    try:
        server.start()
        port = server.port
        assert port_open(port)
        assert server.url("app") == f"postgresql://tweespoor@127.0.0.1:{port}/app"
        assert server.create_database("app") is True
        assert server.create_database("app") is False  # idempotent

        with psycopg.connect(server.url("app"), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (v text)")
            conn.execute("INSERT INTO t VALUES ('kept')")

        server.restart()
        assert server.port == port
        with psycopg.connect(server.url("app"), autocommit=True) as conn:
            assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]
            conn.execute("INSERT INTO t VALUES ('committed before crash')")

        server.kill()  # a crash: committed rows come back through crash recovery
        assert not port_open(port) and not server.running
        server.start()
        with psycopg.connect(server.url("app")) as conn:
            rows = conn.execute("SELECT v FROM t ORDER BY v").fetchall()
        assert rows == [("committed before crash",), ("kept",)]

        server.stop()
        assert not port_open(port)
        assert not server.running
        server.stop()  # idempotent
    finally:
        server.close()
    assert not server.data_dir.exists()
