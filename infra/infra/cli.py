"""The `tweespoor` command: fetch and run the local Kafka broker and PostgreSQL server."""

from __future__ import annotations

import argparse
import os
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from infra import kafka, postgres
from infra.versions import KAFKA_VERSION


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so `kill <pid>` cleans up like Ctrl-C does


def _until_interrupted(is_running: Callable[[], bool]) -> None:
    """Block until Ctrl-C or SIGTERM, or until the server dies on its own."""
    stop = threading.Event()
    try:
        while is_running():
            stop.wait(1.0)
        print("the server exited on its own", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr)


def _serve(server: kafka.LocalKafka | kafka.LocalKafkaCluster | postgres.LocalPostgres,
           lines: Callable[[], Sequence[str]], running: Callable[[], bool]) -> int:
    """Start a server, say where it is, and run it until Ctrl-C or SIGTERM; then close it
    (which removes its data only when that was temporary)."""
    try:
        server.start()
        for line in lines():
            print(line, flush=True)
        _until_interrupted(running)
    finally:
        server.close()
    return 0


def cmd_kafka_fetch(args: argparse.Namespace) -> int:
    lib = kafka.fetch_jars()
    print(f"Kafka {KAFKA_VERSION} jars in {lib}")
    return 0


def cmd_kafka_start(args: argparse.Namespace) -> int:
    if args.brokers < 1:
        print("tweespoor: --brokers must be 1 or more", file=sys.stderr)
        return 2
    if args.brokers == 1:  # the single node, as `make run` has it
        broker = kafka.LocalKafka(port=args.port, data_dir=args.data)
        return _serve(broker, lambda: [
            f"Kafka {KAFKA_VERSION} running; bootstrap servers: {broker.bootstrap_servers}",
            f"data {broker.data_dir}, log {broker.log_file}; Ctrl-C stops it"], lambda: broker.running)
    cluster = kafka.LocalKafkaCluster(args.brokers, data_dir=args.data, port=args.port)
    return _serve(cluster, lambda: [
        f"Kafka {KAFKA_VERSION} cluster of {cluster.brokers} nodes running; "
        f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers}",
        f"data {cluster.data_dir}, logs {cluster.data_dir}/node-*/kafka.log; Ctrl-C stops it"],
        lambda: any(node.running for node in cluster.nodes))


def cmd_postgres_install(args: argparse.Namespace) -> int:
    print(f"PostgreSQL binaries in {postgres.ensure_installed()}")
    return 0


def cmd_chromium_install(args: argparse.Namespace) -> int:
    from infra.browser import ensure_chromium

    print(f"Chromium at {ensure_chromium()}")
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    import asyncio

    from contracts.deadletters import list_dead_letters, redrive
    from contracts.kafka import KafkaSecurity, KafkaSettingsError

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    try:
        security = KafkaSecurity.from_env()  # the operator's principal (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*)
    except KafkaSettingsError as error:
        print(f"tweespoor: {error}", file=sys.stderr)
        return 2
    if args.action == "list":
        for letter in asyncio.run(list_dead_letters(bootstrap, args.group, security=security)):
            print(f"{letter.offset}\t{letter.topic}:{letter.partition}@{letter.original_offset}\t"
                  f"{letter.type or '-'}\tattempts={letter.attempts}{' truncated' if letter.truncated else ''}"
                  f"\t{letter.reason}")
        return 0
    done = asyncio.run(redrive(bootstrap, args.group, max_attempts=args.max_attempts, force=args.force,
                               offsets=args.offset or None, security=security))
    print(f"re-drove {len(done.redriven)} dead letters of {args.group} to its retry topic")
    if done.skipped:
        print(f"skipped {len(done.skipped)} re-driven before: {done.skipped}")
    if done.missing:
        print(f"could not re-drive {len(done.missing)} truncated letters, their originals are gone: {done.missing}")
    if done.refused:
        print(f"refused {len(done.refused)} that failed again after {args.max_attempts} re-drives: {done.refused}; "
              f"re-drive them with --force --offset N once their cause is fixed", file=sys.stderr)
        return 1
    return 0


def cmd_postgres_start(args: argparse.Namespace) -> int:
    server = postgres.LocalPostgres(port=args.port)
    return _serve(server, lambda: [f"PostgreSQL running; DATABASE_URL={server.url('postgres')}",
                                   f"log {server.log_file}; Ctrl-C stops it"], lambda: server.running)


def cmd_credentials(args: argparse.Namespace) -> int:
    from infra.demo import write_credentials

    credentials, tokens = write_credentials(args.directory)
    if args.shared:  # the compose services run as `nobody`; the tokens stay the user's own
        credentials.chmod(0o644)
    print(f"{len(tokens)} demo credentials: hashes in {credentials}, "
          f"tokens in {credentials.parent / 'tokens.toml'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from infra.run import run  # imports the contracts; the infra commands need none of it

    return run(data_dir=args.data_dir, store=args.store, demo=args.demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tweespoor", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    groups = parser.add_subparsers(dest="group", required=True)

    k = groups.add_parser("kafka", help="the local Apache Kafka broker or cluster (JVM, no Docker)")
    ks = k.add_subparsers(dest="action", required=True)
    ks.add_parser("fetch", help="fetch the broker's jars with Maven into the cache").set_defaults(func=cmd_kafka_fetch)
    start = ks.add_parser("start", help="run a broker (or a cluster) in the foreground until Ctrl-C")
    start.add_argument("--brokers", type=int, default=1,
                       help="nodes: 1 (default) is the single broker of `make run`; more make a KRaft cluster "
                            "(3 is as in production: topics replicated 3 times, min.insync.replicas 2)")
    start.add_argument("--port", type=int, default=None,
                       help="client port (default: a free one); a cluster's nodes take this port and the next ones")
    start.add_argument("--data", type=Path, default=None, help="data dir to keep (default: a temporary one)")
    start.set_defaults(func=cmd_kafka_start)

    p = groups.add_parser("postgres", help="a local PostgreSQL server")
    ps = p.add_subparsers(dest="action", required=True)
    ps.add_parser("install", help="install PostgreSQL if missing (Debian, as root)").set_defaults(
        func=cmd_postgres_install
    )
    pstart = ps.add_parser("start", help="run a server in the foreground until Ctrl-C")
    pstart.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    pstart.set_defaults(func=cmd_postgres_start)

    d = groups.add_parser("dlq", help="a consumer group's dead letters (KAFKA_BOOTSTRAP_SERVERS)")
    d.add_argument("action", choices=("list", "redrive"))
    d.add_argument("--group", required=True, choices=("intake", "trajectory", "coaching", "reporting"))
    d.add_argument("--max-attempts", type=int, default=3,
                   help="refuse letters that failed again after this many re-drives (default 3)")
    d.add_argument("--force", action="store_true", help="re-drive refused letters too")
    d.add_argument("--offset", type=int, action="append",
                   help="re-drive only the letter at this dead-letter offset (repeatable)")
    d.set_defaults(func=cmd_dlq)

    c = groups.add_parser("chromium", help="Debian's Chromium, for the dashboard's browser test")
    c.add_subparsers(dest="action", required=True).add_parser(
        "install", help="install it if missing (Debian, as root)").set_defaults(func=cmd_chromium_install)

    cr = groups.add_parser("credentials", help="write the demo credentials (for docker compose)")
    cr.add_argument("--directory", type=Path, default=Path(".tweespoor/config"),
                    help="where to write credentials.toml and tokens.toml")
    cr.add_argument("--shared", action="store_true",
                    help="let other users read credentials.toml (for containers; development only)")
    cr.set_defaults(func=cmd_credentials)

    r = groups.add_parser("run", help="Kafka and the four services, a small demo; Ctrl-C stops all")
    r.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                   help="the services' stores (default: an embedded SQLite file each)")
    r.add_argument("--data-dir", type=Path, default=Path(".tweespoor"), help="where run keeps its data")
    r.add_argument("--no-demo", dest="demo", action="store_false", help="post no demo referrals")
    r.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        print(f"tweespoor: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
