"""The declarative topic list: created idempotently at start, never by accident.

Event topics keep everything (`retention.ms=-1`): they are the audit trail. Each consumer
group has its own dead-letter topic, kept as long, so nothing is silently lost, and its own
retry topic, which only that group's inbox reads: a re-drive puts the group's dead letters
there (`contracts.deadletters`), never back on a topic other groups read. A retry topic
takes records twice the broker's default size, so that a copy of any record an event
topic took, with the re-drive's few headers, fits.
"""

from dataclasses import dataclass, field

EVENT_PARTITIONS = 3  # key = trajectory id, so order holds per trajectory


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int = EVENT_PARTITIONS
    config: dict[str, str] = field(
        default_factory=lambda: {"retention.ms": "-1", "cleanup.policy": "delete"}
    )


INTAKE_EVENTS = "tweespoor.intake.events.v1"
TRAJECTORY_EVENTS = "tweespoor.trajectory.events.v1"
COACHING_EVENTS = "tweespoor.coaching.events.v1"
EVENT_TOPICS = (INTAKE_EVENTS, TRAJECTORY_EVENTS, COACHING_EVENTS)
CHECKPOINTS = "tweespoor.audit.checkpoints.v1"  # signed chain heads (contracts.checkpoints)

# Consumer groups: one per consuming service.
GROUPS = ("intake", "trajectory", "coaching", "reporting")


@dataclass(frozen=True)
class Access:
    """What one service does with the topics: the event topic it publishes (its outbox
    relay), the event topics its inbox consumes (as the consumer group named after it, with
    its own dead-letter and retry topics), and whether it signs and publishes checkpoints
    of its store. Kafka's ACLs are derived from this, and a test holds each service's
    wiring (`main.build`) to it."""

    publishes: str | None = None
    consumes: tuple[str, ...] = ()
    checkpoints: bool = False


ACCESS: dict[str, Access] = {
    "intake": Access(publishes=INTAKE_EVENTS, consumes=(TRAJECTORY_EVENTS,), checkpoints=True),
    "trajectory": Access(publishes=TRAJECTORY_EVENTS, consumes=(INTAKE_EVENTS, COACHING_EVENTS), checkpoints=True),
    "coaching": Access(publishes=COACHING_EVENTS, consumes=(TRAJECTORY_EVENTS, INTAKE_EVENTS), checkpoints=True),
    "reporting": Access(consumes=EVENT_TOPICS),  # reads only
}


def dead_letter_topic(group: str) -> str:
    return f"tweespoor.dlq.{group}.v1"


def retry_topic(group: str) -> str:
    return f"tweespoor.retry.{group}.v1"


BROKER_MAX_MESSAGE_BYTES = 1048588  # Kafka's default `message.max.bytes`: 1 MiB + 12
RETRY_MAX_MESSAGE_BYTES = 2 * BROKER_MAX_MESSAGE_BYTES


def group_topics(group: str) -> tuple[Topic, ...]:
    """A consumer group's own topics: its dead letters and its retries."""
    return (Topic(dead_letter_topic(group), partitions=1),
            Topic(retry_topic(group), partitions=1,
                  config={"retention.ms": "-1", "cleanup.policy": "delete",
                          "max.message.bytes": str(RETRY_MAX_MESSAGE_BYTES)}))


TOPICS: tuple[Topic, ...] = (
    *(Topic(name) for name in EVENT_TOPICS),
    *(topic for group in GROUPS for topic in group_topics(group)),
    # Signed checkpoints of every service's store (contracts.checkpoints): ids and hashes
    # only, one partition so each service's checkpoints are read in the order signed.
    Topic(CHECKPOINTS, partitions=1),
)
