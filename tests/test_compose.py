"""No Docker engine runs here, so docker-compose.yml is checked against the code instead:
the same Kafka version as infra/, every service built from its own Dockerfile, and the
environment each service really reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from contracts.kafka import CLIENT_ENV, SERVICE_ENV
from contracts.runtime import DEFAULT_PORTS, Settings
from infra.versions import KAFKA_VERSION, pom_kafka_version

ROOT = Path(__file__).resolve().parents[1]
SERVICES = tuple(DEFAULT_PORTS)


def interpolated(text: str, env: dict[str, str]) -> str:
    """`${NAME:-default}` and `${NAME}` as docker compose fills them in from `env`."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m[1]) or (m[2] or ""), text)


def load(env: dict[str, str]) -> dict:
    return yaml.safe_load(interpolated((ROOT / "docker-compose.yml").read_text(), env))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load({})


def test_compose_runs_the_kafka_version_infra_runs(compose):
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert pom_kafka_version() == KAFKA_VERSION


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_built_from_its_own_dockerfile_and_runs_its_entry_point(compose, name):
    service = compose["services"][name]
    dockerfile = ROOT / service["build"]["dockerfile"]
    assert dockerfile == ROOT / "services" / name / "Dockerfile"
    text = dockerfile.read_text()
    assert f'CMD ["tweespoor-{name}"]' in text
    assert f"--package tweespoor-{name}" in text
    scripts = (ROOT / "services" / name / "pyproject.toml").read_text()
    assert f'tweespoor-{name} = "{name}.main:cli"' in scripts


@pytest.mark.parametrize("name", SERVICES)
def test_the_environment_is_what_the_service_reads(compose, name):
    environment = {k: str(v) for k, v in compose["services"][name]["environment"].items()}
    settings = Settings.from_env(name, environment)
    assert settings.bootstrap_servers == "kafka:9092"
    assert settings.database_url.startswith("postgresql://")
    assert settings.port == DEFAULT_PORTS[name]
    assert compose["services"][name]["ports"] == [f"{settings.port}:{settings.port}"]
    assert f"EXPOSE {settings.port}" in (ROOT / "services" / name / "Dockerfile").read_text()
    assert str(settings.port) in str(compose["services"][name]["healthcheck"]["test"])
    assert set(environment) <= read_by(name), set(environment) - read_by(name)
    # Without its credentials file a service refuses every request.
    credentials = environment["TWEESPOOR_CREDENTIALS_FILE"]
    assert any(volume.endswith(f":{credentials}:ro") for volume in compose["services"][name]["volumes"])


def read_by(name: str) -> set[str]:
    """The environment variables the service's own code names, and the shared ones."""
    source = "\n".join(p.read_text() for p in (ROOT / "services" / name / name).glob("*.py"))
    own = set(re.findall(rf'"({name.upper()}_[A-Z_]+)"', source))
    if f'f"{name.upper()}_{{name.upper()}}_URL"' in source:  # where the other services answer
        own |= {f"{name.upper()}_{other.upper()}_URL" for other in SERVICES}
    return own | {"KAFKA_BOOTSTRAP_SERVERS", "TWEESPOOR_CREDENTIALS_FILE", *CLIENT_ENV,
                  *(f"{name.upper()}_{k}" for k in ("DATABASE_URL", "HOST", "PORT", *SERVICE_ENV))}


def test_every_service_database_is_created_by_the_init_script(compose):
    script = (ROOT / "infra" / "compose" / "init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)\b", script))
    for name in SERVICES:
        url = compose["services"][name]["environment"][f"{name.upper()}_DATABASE_URL"]
        assert url.rsplit("/", 1)[1] in created


CLUSTER = ("kafka-1", "kafka-2", "kafka-3")


def test_the_cluster_profile_runs_three_brokers_of_one_quorum(compose):
    nodes = {name: compose["services"][name] for name in CLUSTER}
    single = compose["services"]["kafka"]
    assert "profiles" not in single  # `docker compose up` stays one broker
    voters = ",".join(f"{i}@{name}:9093" for i, name in enumerate(CLUSTER, 1))
    for i, (name, node) in enumerate(nodes.items(), 1):
        env = {k: str(v) for k, v in node["environment"].items()}
        assert node["image"] == single["image"] == f"apache/kafka:{KAFKA_VERSION}"
        assert node["profiles"] == ["cluster"]
        assert env["KAFKA_NODE_ID"] == str(i)
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert (env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"], env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) \
            == ("3", "2")
        assert node["volumes"] == [f"{name}-data:/var/lib/kafka/data"] and f"{name}-data" in compose["volumes"]
        assert "kafka-broker-api-versions.sh" in str(node["healthcheck"]["test"])
    assert len({str(n["environment"]["CLUSTER_ID"]) for n in nodes.values()}) == 1
    # Every setting the single node has, the cluster's nodes have too (most with other values).
    assert set(single["environment"]) - {"KAFKA_NODE_ID", "KAFKA_ADVERTISED_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS"} \
        <= set(nodes["kafka-1"]["environment"]) | {"KAFKA_HEAP_OPTS"}


@pytest.mark.parametrize("name", SERVICES)
def test_the_services_use_the_cluster_when_told(name):
    """`KAFKA_BOOTSTRAP_SERVERS=kafka-1:9092,... docker compose --profile cluster up`."""
    bootstrap = ",".join(f"{node}:9092" for node in CLUSTER)
    compose = load({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    environment = {k: str(v) for k, v in compose["services"][name]["environment"].items()}
    assert Settings.from_env(name, environment).bootstrap_servers == bootstrap
    assert bootstrap in (ROOT / "docker-compose.yml").read_text()  # the command, written down
