"""A local PostgreSQL server for development and tests, from the distribution's binaries.

Finds (or, as root on Debian, installs) PostgreSQL, then runs a private cluster on a free
port with initdb and pg_ctl. Data is thrown away with the temporary directory it lives in.
"""

from __future__ import annotations

import atexit
import logging
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

from infra.kafka import free_port, port_open, tail

log = logging.getLogger(__name__)

USER = "tweespoor"  # the superuser initdb creates; no password with trust auth (the default)
ROLE_PREFIX = "tweespoor_"  # each service's role, and the database it owns: tweespoor_<service>
SYSTEM_USER = "postgres"  # initdb and postgres refuse to run as root
START_TIMEOUT = 60
STOP_TIMEOUT = 30
# Fast and unsafe, which suits throw-away dev/test data and nothing else: fsync and
# full-page writes off lose data only if the machine itself crashes. synchronous_commit
# stays on: off would lose the last commits when the server is killed, which the fault
# tests do on purpose.
DEV_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
    "max_connections": "200",
    # A client that vanished (a SIGKILLed replica, a cut network) is noticed within ~25 s:
    # its backend ends, and with it the session's advisory locks (the services' leases).
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
INSTALL_HINT = (
    "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL "
    "to a postgresql:// server"
)


# -- finding and installing ----------------------------------------------------------------


def _major(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def find_bin_dir() -> Path | None:
    """The newest PostgreSQL bin dir with initdb: Debian's layout, then pg_config, then PATH."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: _major(p.parent))
    if debian:
        return debian[-1].parent
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        bindir = Path(done.stdout.strip())
        if done.returncode == 0 and (bindir / "initdb").exists():
            return bindir
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def ensure_installed() -> Path:
    """Return the PostgreSQL bin dir, installing Debian's package first when root can."""
    found = find_bin_dir()
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
        ):
            log.warning("PostgreSQL not found; running: %s", " ".join(cmd))
            subprocess.run(cmd, check=True, env=env)
        found = find_bin_dir()
        if found:
            return found
    raise RuntimeError(f"PostgreSQL's initdb was not found: {INSTALL_HINT}.")


# -- databases on any server ---------------------------------------------------------------


def database_url(server_url: str, dbname: str) -> str:
    """The same server URL with its database replaced by dbname."""
    parts = urllib.parse.urlsplit(server_url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(dbname)))


def create_database(server_url: str, name: str) -> bool:
    """Create database `name` on the server at server_url unless it exists; True if created."""
    try:
        import psycopg
        from psycopg import errors, sql
    except ImportError:  # infra does not depend on psycopg; the services do
        return _create_with_psql(server_url, name)
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except errors.DuplicateDatabase:  # created concurrently by someone else
            return False
        except errors.InsufficientPrivilege as exc:
            raise RuntimeError(
                f"database {name!r} does not exist and this role may not create it: "
                f"create it on the server yourself ({exc})"
            ) from exc
    return True


def _create_with_psql(server_url: str, name: str) -> bool:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"without psycopg only plain lower-case names are supported: {name!r}")
    bin_dir = find_bin_dir()
    psql = str(bin_dir / "psql") if bin_dir else "psql"
    base = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server_url, "-tA", "-c"]
    exists = subprocess.run([*base, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                            capture_output=True, text=True, check=True)  # fmt: skip
    if exists.stdout.strip() == "1":
        return False
    subprocess.run([*base, f'CREATE DATABASE "{name}"'], capture_output=True, text=True, check=True)
    return True


def provision_service(server_url: str, service: str, password: str) -> str:
    """Give `service` its own role and database on the server at server_url; its URL.

    Role `tweespoor_<service>` logs in with `password` (set again when the role exists) and
    may do nothing beyond that: no superuser, no CREATEDB, no CREATEROLE. Database
    `tweespoor_<service>` is owned by it — so the role creates its tables in `public` —
    and PUBLIC loses its privileges on it, CONNECT among them: no other service's role
    can open the store. server_url must be a role with CREATEROLE and CREATEDB (the
    server's admin); `psycopg.errors.InsufficientPrivilege` says when it is not.
    The password travels to the server as a SCRAM verifier, never in clear.
    """
    import psycopg
    from psycopg import errors, sql

    if not re.fullmatch(r"[a-z][a-z0-9_]*", service):
        raise ValueError(f"a service name is plain lower case: {service!r}")
    name = ROLE_PREFIX + service
    role, database = sql.Identifier(name), sql.Identifier(name)
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        try:
            conn.execute(sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.SQL(verb), role, sql.Literal(verifier)))
        except errors.DuplicateObject:  # created concurrently: set the password on it
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, sql.Literal(verifier)))
        owner_of = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s"
        owner = conn.execute(owner_of, (name,)).fetchone()
        if owner is None:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
            except errors.DuplicateDatabase:  # created concurrently by someone else
                owner = conn.execute(owner_of, (name,)).fetchone()
        if owner is not None and owner[0] != name:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
            log.warning(
                "database %s was owned by %s and now by %s; tables it made before keep their owner: "
                "run REASSIGN OWNED BY %s TO %s in that database, or start it afresh",
                name, owner[0], name, owner[0], name,
            )
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    parts = urllib.parse.urlsplit(server_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{urllib.parse.quote(name)}:{urllib.parse.quote(password, safe='')}@" + (
        f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, "/" + name, "", ""))


# -- processes -----------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True while pid runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _sbin(tool: str) -> str:
    """Path of a system tool; root's PATH does not always include the sbin dirs."""
    return shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or tool


def _ensure_system_user() -> None:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        log.warning("creating system user %r to run PostgreSQL (it refuses root)", SYSTEM_USER)
        subprocess.run([_sbin("useradd"), "--system", "--user-group", "--no-create-home", SYSTEM_USER], check=True)


_live: set[LocalPostgres] = set()


def _stop_all() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - best effort while the interpreter exits
            server.kill()


atexit.register(_stop_all)


class LocalPostgres:
    """A private PostgreSQL cluster on 127.0.0.1, made with initdb and run with pg_ctl.

    Tuned for development and tests only (DEV_SETTINGS: no fsync; override with
    `settings`). `auth="trust"` (the default) lets any role log in without a password;
    `auth="scram-sha-256"` asks a password of every TCP client (the socket in socket_dir
    stays trusted, for the server's own user), the superuser's being `superuser_password`
    (made up when not given; give it for an existing data_dir). As root, the server runs as the
    `postgres` system user. `restart()` or a new LocalPostgres on the same data_dir keeps
    the data; a temporary directory made here is removed by `close()`.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | str | None = None,
        log_file: Path | str | None = None,
        bin_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        auth: Literal["trust", "scram-sha-256"] = "trust",
        superuser_password: str | None = None,
    ) -> None:
        if auth not in ("trust", "scram-sha-256"):
            raise ValueError(f"auth is 'trust' or 'scram-sha-256', not {auth!r}")
        self.port = port or free_port()
        self.auth = auth
        self._password_given = superuser_password is not None
        self.superuser_password = (superuser_password or secrets.token_urlsafe(24)) if auth != "trust" else None
        self.settings = {**DEV_SETTINGS, **(settings or {})}
        self._base = Path(tempfile.mkdtemp(prefix="tweespoor-pg-")).resolve()
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir).resolve() if data_dir else self._base / "data"
        # Not inside data_dir: initdb wants it empty. Beside a given data_dir, so it is kept.
        default_log = self._base / "postgres.log" if self._owns_data else self.data_dir.with_suffix(".log")
        self.log_file = Path(log_file).resolve() if log_file else default_log
        self.socket_dir = self._base / "sock"  # short path: socket names are limited to ~100 bytes
        self.bin_dir = bin_dir
        self._as_root = os.geteuid() == 0

    def url(self, dbname: str = "postgres") -> str:
        """The superuser's URL of database dbname (with its password under password auth)."""
        password = f":{urllib.parse.quote(self.superuser_password, safe='')}" if self.superuser_password else ""
        return f"postgresql://{USER}{password}@127.0.0.1:{self.port}/{dbname}"

    @property
    def _shown(self) -> str:  # for logs: without the password
        return f"postgresql://{USER}@127.0.0.1:{self.port} ({self.auth})"

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; True if it was created."""
        return create_database(self.url("postgres"), name)

    @property
    def pid(self) -> int | None:
        """The postmaster's pid, from its lock file, while it runs."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # Commands ----------------------------------------------------------------------------

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.bin_dir is not None
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_root:
            cmd = [_sbin("runuser"), "-u", SYSTEM_USER, "--", *cmd]
        # Output to a file, not a pipe: the postmaster that pg_ctl forks would hold a pipe open.
        with tempfile.TemporaryFile("w+") as out:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True)
            out.seek(0)
            done.stdout = out.read()
        if check and done.returncode != 0:
            hint = ""
            if self._as_root:
                hint = f"\n(as root the server runs as {SYSTEM_USER!r}: every parent dir must be searchable by it)"
            raise RuntimeError(f"{tool} {' '.join(args[:1])} failed (exit {done.returncode}):\n{done.stdout}{hint}")
        return done

    def _prepare_dirs(self) -> None:
        for d in (self.data_dir, self.socket_dir, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.log_file.touch()
        if self._as_root:
            _ensure_system_user()
            owner = pwd.getpwnam(SYSTEM_USER)
            for p in (self._base, self.data_dir, self.socket_dir, self.log_file):
                os.chown(p, owner.pw_uid, owner.pw_gid)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            if self.auth != "trust" and not self._password_given:
                raise ValueError(f"{self.data_dir} holds a cluster: give its superuser_password")
            return  # an existing cluster: keep its data
        if self.auth == "trust":
            auth = ["--auth=trust"]
        else:  # the password in a file, not on a command line; gone once initdb has read it
            pwfile = self._base / "superuser-password"
            pwfile.touch(mode=0o600)
            pwfile.write_text(f"{self.superuser_password}\n")
            if self._as_root:
                owner = pwd.getpwnam(SYSTEM_USER)
                os.chown(pwfile, owner.pw_uid, owner.pw_gid)
            auth = ["--auth-local=trust", f"--auth-host={self.auth}", f"--pwfile={pwfile}"]
        try:
            self._run(
                "initdb", "-D", str(self.data_dir), *auth, "-U", USER,
                "--encoding=UTF8", "--locale=C",
                "--no-sync",  # dev/test data: not worth waiting for the disk
            )  # fmt: skip
        finally:
            if self.auth != "trust":
                pwfile.unlink(missing_ok=True)

    def _clear_stale_lock(self) -> None:
        # After kill() an unreaped (zombie) postmaster would still look alive to postgres.
        lock = self.data_dir / "postmaster.pid"
        if lock.exists() and self.pid is None:
            lock.unlink()
            for f in self.socket_dir.glob(".s.PGSQL.*"):
                f.unlink()

    # Lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: int = START_TIMEOUT) -> LocalPostgres:
        """initdb if needed, start the server and wait until it accepts connections."""
        if self.running:
            return self
        self.bin_dir = self.bin_dir or ensure_installed()
        self._prepare_dirs()
        self._initdb()
        self._clear_stale_lock()
        opts = f"-h 127.0.0.1 -p {self.port} -k {shlex.quote(str(self.socket_dir))} " + " ".join(
            f"-c {shlex.quote(f'{k}={v}')}" for k, v in self.settings.items()
        )
        _live.add(self)
        try:
            self._run(
                "pg_ctl", "start", "-D", str(self.data_dir), "-o", opts,
                "-w", "-t", str(timeout), "-l", str(self.log_file),
            )  # fmt: skip
            if not port_open(self.port):
                raise RuntimeError(f"PostgreSQL started but port {self.port} is closed")
        except BaseException as exc:
            self.kill()
            if isinstance(exc, RuntimeError):
                raise RuntimeError(f"{exc}\nlast lines of {self.log_file}:\n{tail(self.log_file)}") from exc
            raise
        log.info("PostgreSQL running at %s (log %s)", self._shown, self.log_file)
        return self

    def stop(self, timeout: int = STOP_TIMEOUT) -> None:
        """Fast shutdown (rolls back open transactions). Idempotent."""
        if self.running:
            args = ["stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(timeout)]
            done = self._run("pg_ctl", *args, check=False)
            if done.returncode != 0 and self.running:
                log.warning("pg_ctl stop failed; killing PostgreSQL:\n%s", done.stdout)
                self.kill()
        _live.discard(self)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster and its backends, as a crash would (for fault tests).

        With the default synchronous_commit=off the newest commits may be lost; a fault
        test that expects every acknowledged commit back passes
        settings={"synchronous_commit": "on"} (cheap while fsync is off).
        """
        pid = self.pid
        if pid is not None:
            victims = [pid, *_children(pid)]  # before the kill: orphans get a new parent
            for victim in victims:
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
            while any(_alive(v) for v in victims) and time.monotonic() < deadline:
                time.sleep(0.05)
        _live.discard(self)

    def restart(self, timeout: int = START_TIMEOUT) -> LocalPostgres:
        """Stop, then start again on the same data dir and port."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and remove the temporary directory (with the data only if made here)."""
        self.stop()
        shutil.rmtree(self._base, ignore_errors=True)  # holds the data only if made here

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalPostgres({self._shown}, data_dir={self.data_dir}, running={self.running})"
