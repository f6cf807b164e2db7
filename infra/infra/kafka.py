"""A local Apache Kafka broker (KRaft, one combined node) run on the JVM, no Docker, and
a cluster of such nodes (`LocalKafkaCluster`, a static quorum of combined nodes).

The broker's jars come from Maven Central through infra/kafka/pom.xml and are cached
outside the repository; see NOTES.md "Apache Kafka without Docker".
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import fcntl
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from infra.versions import KAFKA_POM, KAFKA_VERSION

log = logging.getLogger(__name__)

STARTED_MARKER = "Kafka Server started"  # logged by kafka.server.KafkaRaftServer
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
JVM_OPTS = ["-Xms512m", "-Xmx1g", "-XX:+UseG1GC"]
# A cluster's nodes share this machine: small heaps, serial GC, C1 only (starts faster).
CLUSTER_JVM_OPTS = ["-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
TOOL_JVM_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]  # the short-lived StorageTool
HEAP_ENV = "TWEESPOOR_KAFKA_HEAP"  # JVM options of the broker(s), e.g. "-Xms256m -Xmx512m"
# Config, metadata and coordinator chatter drowns the lines that matter; keep it at WARN.
NOISY_LOGGERS = [
    "kafka",
    "org.apache.kafka",
    "state.change.logger",
    "kafka.request.logger",
]
# ...but keep the start/shutdown milestones, the version and the signals received.
KEPT_INFO_LOGGERS = [
    "kafka.Kafka",
    "kafka.server.KafkaRaftServer",
    "kafka.server.BrokerServer",
    "org.apache.kafka.common.utils.AppInfoParser",
    "org.apache.kafka.common.utils.LoggingSignalHandler",
]


# -- small helpers, shared with infra.postgres -------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a text file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


# -- jars --------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where fetched artefacts live: $TWEESPOOR_CACHE or ~/.cache/tweespoor."""
    env = os.environ.get("TWEESPOOR_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tweespoor"


def require_tools(*tools: str) -> None:
    """Fail with what to install when java (or mvn) is not on PATH."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"{' and '.join(missing)} not found on PATH: the local Kafka broker needs Java 17+ "
            "and Maven (Debian: apt-get install openjdk-17-jre-headless maven), or set "
            "KAFKA_BOOTSTRAP_SERVERS to a running broker, or run a Docker engine."
        )


def fetch_jars(version: str = KAFKA_VERSION, pom: Path = KAFKA_POM) -> Path:
    """Return the lib dir with the broker's jars, fetching them with Maven if needed."""
    home = cache_dir() / f"kafka-{version}"
    lib = home / "lib"
    if (lib / ".complete").exists():
        return lib
    require_tools("java", "mvn")
    home.mkdir(parents=True, exist_ok=True)
    # A lock, so parallel test workers do not fetch into the same place at once.
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (lib / ".complete").exists():
            return lib
        tmp = Path(tempfile.mkdtemp(prefix="lib-", dir=home))
        cmd = [
            "mvn", "-B", "-q", "-f", str(pom),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            "-DincludeScope=runtime", f"-DoutputDirectory={tmp}",
        ]  # fmt: skip
        if version != KAFKA_VERSION:
            cmd.append(f"-Dkafka.version={version}")
        log.info("fetching Kafka %s jars: %s", version, " ".join(cmd))
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not any(tmp.glob(f"kafka_2.13-{version}.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(
                f"Maven could not fetch Kafka {version} (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        (tmp / ".complete").write_text(f"kafka {version}\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        if lib.exists():  # a half-finished earlier attempt
            shutil.rmtree(lib)
        os.rename(tmp, lib)  # atomic: readers see no lib or a complete one
        return lib


def jvm_options(heap: list[str] | str | None, default: list[str]) -> list[str]:
    """The broker JVM's options: `heap` if given, else $TWEESPOOR_KAFKA_HEAP, else `default`."""
    if heap is None:
        heap = os.environ.get(HEAP_ENV, "").strip() or None
    if heap is None:
        return list(default)
    return shlex.split(heap) if isinstance(heap, str) else list(heap)


def new_cluster_id() -> str:
    """A cluster id as `kafka-storage random-uuid` makes one (Kafka's Uuid: 16 random bytes,
    URL-safe base64 without padding, never starting with '-'), without starting a JVM."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


# -- the broker --------------------------------------------------------------------------

_live: set[LocalKafka] = set()
_clusters: set[LocalKafkaCluster] = set()


def local_broker(bootstrap_servers: str) -> LocalKafka | LocalKafkaCluster | None:
    """The running LocalKafka (or LocalKafkaCluster) of this process at that address, if any."""
    return next((b for b in [*_live, *_clusters] if b.bootstrap_servers == bootstrap_servers), None)


def _stop_all() -> None:
    for broker in list(_live):
        try:
            broker.stop()
        except Exception:  # noqa: BLE001 - best effort while the interpreter exits
            broker.kill()


atexit.register(_stop_all)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when this process dies, or None.

    Covers a parent that is killed hard (no atexit). Linux ties this to the forking
    thread, so it is only safe when the main thread starts the child.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork
    parent = os.getpid()

    def hook() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call above
            os._exit(1)

    return hook


class _DataDir:
    """What a broker and a cluster share: a `with` block starts and closes them, and
    closing removes the data directory if they made it."""

    data_dir: Path
    _owns_data: bool

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop, and remove the data directory if this object made it."""
        self.stop()
        if self._owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class LocalKafka(_DataDir):
    """One Apache Kafka node (broker and KRaft controller) in a JVM of its own.

    The data directory holds server.properties, the log4j2 config, the cluster id and the
    topic data, so `restart()` (or a new LocalKafka on the same dir and ports) finds its
    records again. A temporary data directory made here is removed by `close()`.

    Alone (the defaults) it is its own quorum with replication factor 1 everywhere. As a
    member of a `LocalKafkaCluster` it gets its node id, the quorum's `voters`
    ("1@127.0.0.1:<port>,..."), the cluster's id file and `extra` properties (the
    cluster's replication settings). `heap` (JVM options) defaults to $TWEESPOOR_KAFKA_HEAP,
    else JVM_OPTS.
    """

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        data_dir: Path | str | None = None,
        log_file: Path | str | None = None,
        lib_dir: Path | None = None,
        *,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id_file: Path | str | None = None,
        extra: Mapping[str, str] | None = None,
        heap: list[str] | str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        while self.controller_port == self.port:  # two calls may hand out the same port
            self.controller_port = free_port()
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="tweespoor-kafka-")).resolve()
        self.log_file = Path(log_file or self.data_dir / "kafka.log").resolve()
        self.lib_dir = lib_dir
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id_file = Path(cluster_id_file or self.data_dir / "cluster.id").resolve()
        self.extra = dict(extra or {})
        self.jvm_options = jvm_options(heap, JVM_OPTS)
        self._proc: subprocess.Popen[bytes] | None = None
        self._start_offset = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # Files -------------------------------------------------------------------------------

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "kraft-logs"

    def _write_config(self) -> None:
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            # After a crash the restarted node's registration is refused until the old
            # broker session expires (default 9 s, plus retries); one node has no peers to
            # wait for, so keep that short.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # The 128 MiB default is allocated on the heap at start.
            "log.cleaner.dedupe.buffer.size": "2097152",
            **self.extra,
        }
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        lines = [
            "status = warn",
            # Kafka logs its own shutdown from a JVM hook; log4j's hook would close the file first.
            "shutdownHook = disable",
            "appender.file.type = File",
            "appender.file.name = FILE",
            f"appender.file.fileName = {self.log_file}",
            "appender.file.append = true",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = FILE",
        ]
        for i, name in enumerate(NOISY_LOGGERS):
            lines += [f"logger.noisy{i}.name = {name}", f"logger.noisy{i}.level = WARN"]
        for i, name in enumerate(KEPT_INFO_LOGGERS):
            lines += [f"logger.info{i}.name = {name}", f"logger.info{i}.level = INFO"]
        self.log4j_file.write_text("\n".join(lines) + "\n")

    def _java(self, main: str, *args: str, heap: list[str] | None = None) -> list[str]:
        assert self.lib_dir is not None
        return [
            "java", *(heap or self.jvm_options),
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp", f"{self.lib_dir}/*", main, *args,
        ]  # fmt: skip

    def _format_storage(self) -> None:
        if (self.log_dirs / "meta.properties").exists():
            return  # formatted before: keep its cluster id and data
        id_file = self.cluster_id_file
        if id_file.exists():
            cluster_id = id_file.read_text().strip()
        else:
            cluster_id = self._tool("random-uuid").strip().splitlines()[-1]
            id_file.write_text(cluster_id + "\n")
        self._tool("format", "-t", cluster_id, "-c", str(self.properties_file))

    def _tool(self, *args: str) -> str:
        cmd = self._java("kafka.tools.StorageTool", *args, heap=TOOL_JVM_OPTS)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage {args[0]} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    # Lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> LocalKafka:
        """Start the broker and wait until it accepts connections and says it started."""
        if self.running:
            return self
        self.spawn()
        return self.wait_ready(timeout)

    def prepare(self) -> None:
        """Everything before the broker's JVM: jars, config, formatted storage. Safe to run
        in another thread (a cluster formats its nodes at once)."""
        self.lib_dir = self.lib_dir or fetch_jars()
        require_tools("java")  # the jars may be cached while java is gone
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._format_storage()

    def spawn(self) -> LocalKafka:
        """Start the broker's JVM without waiting for it: a node of a static quorum cannot
        be ready before a majority of the voters runs. `wait_ready()` waits."""
        if self.running:
            return self
        self.prepare()
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as out:
            self._proc = subprocess.Popen(
                self._java("kafka.Kafka", str(self.properties_file)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: signals reach the whole JVM
                preexec_fn=_die_with_parent_hook(),
            )
        _live.add(self)
        self._start_offset = offset
        log.info("Kafka starting on %s (pid %d, log %s)", self.bootstrap_servers, self._proc.pid, self.log_file)
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> LocalKafka:
        """Wait until the spawned broker accepts connections and says it started; stop it
        (and raise) if it does not within `timeout`."""
        try:
            self._wait_ready(self._start_offset, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        started = False
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"Kafka exited with code {self._proc.returncode} while starting; "
                    f"last lines of {self.log_file}:\n{tail(self.log_file)}"
                )
            if not started:  # only lines written by this start count
                with open(self.log_file, "rb") as f:
                    f.seek(offset)
                    started = STARTED_MARKER.encode() in f.read()
            if started and port_open(self.port):
                return
            time.sleep(0.2)
        raise TimeoutError(
            f"Kafka did not start within {timeout:.0f} s on {self.bootstrap_servers}; "
            f"last lines of {self.log_file}:\n{tail(self.log_file)}"
        )

    def _signal_group(self, sig: int) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the broker down cleanly (SIGTERM), SIGKILL after `timeout`. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka did not stop within %.0f s; killing it", timeout)
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._proc = None
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for fault tests). Idempotent."""
        if self._proc is not None:
            self._signal_group(signal.SIGKILL)
            self._proc.wait()
        self._proc = None
        _live.discard(self)

    def restart(self, timeout: float = START_TIMEOUT) -> LocalKafka:
        """Stop, then start again on the same data dir and ports."""
        self.stop()
        return self.start(timeout)

    def __repr__(self) -> str:
        return f"LocalKafka({self.bootstrap_servers}, data_dir={self.data_dir}, running={self.running})"


# -- a cluster ---------------------------------------------------------------------------


class LocalKafkaCluster(_DataDir):
    """`brokers` combined nodes (broker and KRaft controller each) on this machine: one
    static quorum of all of them (`controller.quorum.voters`), one cluster id, one JVM per
    node with a small heap (`heap`, else $TWEESPOOR_KAFKA_HEAP, else CLUSTER_JVM_OPTS).
    Internal topics get replication factor min(3, brokers) and min.insync.replicas
    min(2, brokers).

    Layout of `data_dir`: `cluster.json` (every node's ports, so a restart finds the same
    addresses), `cluster.id`, and `node-<id>/` per node (its server.properties, log4j2
    config, KRaft logs and kafka.log). Node ids are 1..brokers. A temporary data directory
    made here is removed by `close()`.
    """

    def __init__(
        self,
        brokers: int = 3,
        data_dir: Path | str | None = None,
        port: int | None = None,
        *,
        heap: list[str] | str | None = None,
        lib_dir: Path | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if brokers < 1:
            raise ValueError(f"a cluster needs at least one broker, not {brokers}")
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="tweespoor-kafka-cluster-")).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        layout = self._ports(brokers, port)
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in enumerate(layout, 1))
        factor, min_insync = str(min(3, brokers)), str(min(2, brokers))
        properties = {
            "default.replication.factor": factor,
            "min.insync.replicas": min_insync,
            "offsets.topic.replication.factor": factor,
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": factor,
            "transaction.state.log.min.isr": min_insync,
            "share.coordinator.state.topic.replication.factor": factor,
            "share.coordinator.state.topic.min.isr": min_insync,
            # Several JVMs on a few cores: few threads each.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "background.threads": "2",
            **(extra or {}),
        }
        options = jvm_options(heap, CLUSTER_JVM_OPTS)
        self.nodes = [
            LocalKafka(client, controller, self.data_dir / f"node-{i}", lib_dir=lib_dir, node_id=i, voters=voters,
                       cluster_id_file=self.data_dir / "cluster.id", extra=properties, heap=options)
            for i, (client, controller) in enumerate(layout, 1)
        ]

    def _ports(self, brokers: int, port: int | None) -> list[tuple[int, int]]:
        """(client, controller) port per node: kept in cluster.json, so the same cluster
        comes back on the same addresses."""
        layout_file = self.data_dir / "cluster.json"
        if layout_file.exists():
            known = [(n["port"], n["controller_port"]) for n in json.loads(layout_file.read_text())["nodes"]]
            if len(known) != brokers:
                raise RuntimeError(f"{self.data_dir} holds a cluster of {len(known)} nodes, not {brokers}")
            if port is not None and known[0][0] != port:
                raise RuntimeError(f"{self.data_dir} holds a cluster on port {known[0][0]}, not {port}")
            return known
        taken: set[int] = set()
        if port is not None:
            taken |= set(range(port, port + brokers))

        def fresh() -> int:
            while (p := free_port()) in taken:
                pass
            taken.add(p)
            return p

        clients = list(range(port, port + brokers)) if port is not None else [fresh() for _ in range(brokers)]
        layout = [(c, fresh()) for c in clients]
        layout_file.write_text(json.dumps(
            {"nodes": [{"node_id": i, "port": c, "controller_port": k} for i, (c, k) in enumerate(layout, 1)]},
            indent=2) + "\n")
        return layout

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def brokers(self) -> int:
        return len(self.nodes)

    @property
    def running(self) -> bool:
        """True while every node runs."""
        return all(node.running for node in self.nodes)

    @property
    def log_files(self) -> list[Path]:
        return [node.log_file for node in self.nodes]

    def node(self, node_id: int) -> LocalKafka:
        return self.nodes[node_id - 1]

    # Lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> LocalKafkaCluster:
        """Start every node and wait until all are ready. The nodes are formatted at once,
        then all spawned before any is waited for: none is ready before a majority runs."""
        if not self.cluster_id_file.exists():
            self.cluster_id_file.write_text(new_cluster_id() + "\n")
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                for done in [pool.submit(node.prepare) for node in self.nodes if not node.running]:
                    done.result()
            for node in self.nodes:  # from this thread: PR_SET_PDEATHSIG belongs to the forking thread
                node.spawn()
            _clusters.add(self)
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        log.info("Kafka cluster of %d nodes running: %s", len(self.nodes), self.bootstrap_servers)
        return self

    @property
    def cluster_id_file(self) -> Path:
        return self.data_dir / "cluster.id"

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node, as a crash would."""
        self.node(node_id).kill()

    def stop_node(self, node_id: int, timeout: float = STOP_TIMEOUT) -> None:
        self.node(node_id).stop(timeout)

    def restart_node(self, node_id: int, timeout: float = START_TIMEOUT) -> LocalKafka:
        """Start one node again (stopping it first if it runs) on its data and ports."""
        node = self.node(node_id)
        node.stop()
        return node.start(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop every node at once (a controlled shutdown waits on its peers: one after the
        other, the last ones would wait for the ones gone). Idempotent."""
        running = [node for node in self.nodes if node.pid is not None]
        if running:
            with ThreadPoolExecutor(len(running)) as pool:
                list(pool.map(lambda node: node.stop(timeout), running))
        _clusters.discard(self)

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()
        _clusters.discard(self)

    # What the cluster says ----------------------------------------------------------------

    async def describe_topic(self, topic: str, security: Any = None) -> dict[int, dict[str, Any]]:
        """Per partition of `topic`: its leader's node id, replicas and in-sync replicas,
        as the cluster's metadata has them now."""
        from contracts.kafka import admin  # every client is made there

        client = admin(self.bootstrap_servers, "tweespoor-infra", security=security)
        await client.start()
        try:
            [described] = await client.describe_topics([topic])
        finally:
            await client.close()
        if described["error_code"] != 0:
            raise RuntimeError(f"cannot describe {topic}: error code {described['error_code']}")
        return {p["partition"]: {"leader": p["leader"], "replicas": list(p["replicas"]), "isr": list(p["isr"])}
                for p in described["partitions"]}

    async def leader_of(self, topic: str, partition: int = 0, security: Any = None) -> int:
        """The node id leading `topic`/`partition` now (-1 while it has none)."""
        return int((await self.describe_topic(topic, security))[partition]["leader"])

    def __repr__(self) -> str:
        return f"LocalKafkaCluster({self.bootstrap_servers}, data_dir={self.data_dir}, running={self.running})"
