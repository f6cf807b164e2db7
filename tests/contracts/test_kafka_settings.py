"""Kafka client settings from the environment (`contracts.kafka`): security, replication,
session timeout; and the one declaration of each service's topic access (`ACCESS`) that
every service's wiring follows."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from contracts import kafka
from contracts.kafka import KafkaSecurity, KafkaSettingsError, Replication, session_timeout_ms
from contracts.topics import ACCESS, CHECKPOINTS, EVENT_TOPICS, GROUPS


def test_plaintext_is_the_default_and_adds_nothing():
    security = KafkaSecurity.from_env({})
    assert security == KafkaSecurity("PLAINTEXT")
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    # Credentials in the environment mean nothing to a plaintext client.
    assert KafkaSecurity.from_env({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}).username is None


def test_sasl_ssl_with_scram_from_the_environment(tmp_path):
    env = {"KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "KAFKA_SASL_USERNAME": "tweespoor-intake",
           "KAFKA_SASL_PASSWORD": "secret"}
    security = KafkaSecurity.from_env(env)
    assert (security.protocol, security.mechanism, security.username, security.password) == (
        "SASL_SSL", "SCRAM-SHA-512", "tweespoor-intake", "secret")
    options = security.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("tweespoor-intake", "secret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname
    assert "secret" not in repr(security)


def test_the_ssl_context_is_made_once_per_ca_file(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    import datetime as dt

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "test ca")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(key, hashes.SHA256()))
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    env = {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(ca)}
    first, second = KafkaSecurity.from_env(env).client_options(), KafkaSecurity.from_env(env).client_options()
    assert first["ssl_context"] is second["ssl_context"]
    assert "sasl_mechanism" not in first
    assert [c["subject"] for c in first["ssl_context"].get_ca_certs()] == [((("commonName", "test ca"),),)]


def test_a_service_takes_its_own_principal_before_the_shared_one(tmp_path):
    (tmp_path / "trajectory.pw").write_text("from-a-file\n")
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
           "KAFKA_SASL_USERNAME": "shared", "KAFKA_SASL_PASSWORD": "shared-pw",
           "INTAKE_KAFKA_SASL_USERNAME": "tweespoor-intake", "INTAKE_KAFKA_SASL_PASSWORD": "intake-pw",
           "TRAJECTORY_KAFKA_SASL_USERNAME": "tweespoor-trajectory",
           "TRAJECTORY_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "trajectory.pw"),
           # Only the credentials are per service: not the protocol.
           "INTAKE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    intake = KafkaSecurity.from_env(env, service="intake")
    assert (intake.protocol, intake.mechanism, intake.username, intake.password) == (
        "SASL_SSL", "SCRAM-SHA-256", "tweespoor-intake", "intake-pw")
    trajectory = KafkaSecurity.from_env(env, service="trajectory")
    assert (trajectory.username, trajectory.password) == ("tweespoor-trajectory", "from-a-file")
    coaching = KafkaSecurity.from_env(env, service="coaching")
    assert (coaching.username, coaching.password) == ("shared", "shared-pw")
    assert (KafkaSecurity.from_env(env).username, KafkaSecurity.from_env(env).password) == ("shared", "shared-pw")


def test_a_password_file_is_read_without_its_newline(tmp_path):
    (tmp_path / "pw").write_text("s3cret\n")
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u",
           "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "pw")}
    assert KafkaSecurity.from_env(env).password == "s3cret"


@pytest.mark.parametrize("env, says", [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p",
      "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"}, "KAFKA_SASL_PASSWORD_FILE"),
    ({"KAFKA_SSL_CAFILE": "/etc/ca.pem"}, "KAFKA_SSL_CAFILE"),
])
def test_settings_that_cannot_work_are_refused_with_their_name(env, says):
    with pytest.raises(KafkaSettingsError, match=says):
        KafkaSecurity.from_env(env)


@pytest.mark.parametrize("brokers, env, expected", [
    (1, {}, (1, 1)),
    (2, {}, (2, 2)),
    (3, {}, (3, 2)),
    (5, {}, (3, 2)),
    (5, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": "5"}, (5, 2)),
    (3, {"TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS": "3"}, (3, 3)),
    (3, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": "1"}, (1, 1)),
    (3, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": " "}, (3, 2)),
])
def test_replication_follows_the_cluster_unless_set(brokers, env, expected):
    assert Replication.from_env(env).resolve(brokers) == expected


@pytest.mark.parametrize("brokers, env, says", [
    (1, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": "3"}, "has 1 broker"),
    (3, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": "2", "TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS": "3"}, "no write"),
    (3, {"TWEESPOOR_KAFKA_REPLICATION_FACTOR": "three"}, "whole number"),
    (3, {"TWEESPOOR_KAFKA_MIN_INSYNC_REPLICAS": "0"}, "1 or more"),
])
def test_replication_that_cannot_work_is_refused(brokers, env, says):
    with pytest.raises(KafkaSettingsError, match=says):
        Replication.from_env(env).resolve(brokers)


def test_session_timeout_from_the_environment():
    assert session_timeout_ms({}) == 10_000
    assert session_timeout_ms({"TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS": "6000"}) == 6000


def test_the_factories_pass_the_security_settings_to_every_client(monkeypatch):
    """Built, not started: the options each client keeps are the ones asked for."""
    monkeypatch.setenv("TWEESPOOR_KAFKA_SESSION_TIMEOUT_MS", "6000")
    asyncio.run(_clients_keep_their_settings(KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-512", "u", "p")))


async def _clients_keep_their_settings(security: KafkaSecurity) -> None:
    producer = kafka.producer("127.0.0.1:1", "tweespoor-x", security=security)
    plain = kafka.plain_producer("127.0.0.1:1", "tweespoor-x", security=security)
    consumer = kafka.consumer("127.0.0.1:1", "intake", security=security)
    reader = kafka.reader("127.0.0.1:1", security=security)
    admin = kafka.admin("127.0.0.1:1", security=security)
    for client in (producer.client, plain.client, consumer._client, reader._client, admin._client):
        assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username,
                client._sasl_plain_password) == ("SASL_PLAINTEXT", "SCRAM-SHA-512", "u", "p")
    assert producer._txn_manager is not None and plain._txn_manager is None  # idempotent or not
    assert consumer._group_id == "intake" and reader._group_id is None
    assert consumer._coordinator is None  # made at start; the settings are kept until then
    assert consumer._session_timeout_ms == 6000 and consumer._heartbeat_interval_ms == 2000
    assert consumer._isolation_level == reader._isolation_level == "read_committed"


# --- topic access: one declaration -----------------------------------------------------


def test_access_covers_every_group_and_checkpoints_are_shared_by_writers():
    assert set(ACCESS) == set(GROUPS)
    assert {a.publishes for a in ACCESS.values() if a.publishes} == set(EVENT_TOPICS)
    assert ACCESS["reporting"].publishes is None and ACCESS["reporting"].consumes == EVENT_TOPICS
    for name, access in ACCESS.items():
        assert access.publishes not in access.consumes, name
        assert CHECKPOINTS not in access.consumes


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """The four services as their processes assemble them (`main.build`), not started."""
    from coaching.main import build as coaching
    from contracts.runtime import Settings
    from infra.demo import write_credentials
    from intake.main import build as intake
    from reporting.main import build as reporting
    from trajectory.main import build as trajectory

    tmp = tmp_path_factory.mktemp("access")
    credentials, _ = write_credentials(tmp / "config")
    built = {}
    for name, build in {"intake": intake, "trajectory": trajectory, "coaching": coaching,
                        "reporting": reporting}.items():
        settings = Settings.from_env(name, {"TWEESPOOR_DATA_DIR": str(tmp), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
        built[name] = build(settings, {"TWEESPOOR_CREDENTIALS_FILE": str(credentials),
                                       "INTAKE_PSEUDONYM_KEY": "access"})
    yield built
    for service in built.values():
        service.app.close()
        if service.processing_log is not None:
            service.processing_log.close()


@pytest.mark.parametrize("name", GROUPS)
def test_every_service_is_wired_as_access_declares(services, name):
    from contracts.service import ChainedEventStore

    service, access = services[name], ACCESS[name]
    assert service.publishes_to == access.publishes
    assert tuple(service.consumes_from) == access.consumes
    assert getattr(service.app, "group", None) == name  # its consumer group, dead letters, retries
    assert isinstance(getattr(service.app, "events", None), ChainedEventStore) == access.checkpoints
