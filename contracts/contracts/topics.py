"""The declarative topic list: created idempotently at start, never by accident.

Event topics keep everything (`retention.ms=-1`): they are the audit trail. Each consumer
group has its own dead-letter topic, kept as long, so nothing is silently lost.
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

# Consumer groups: one per consuming service.
GROUPS = ("intake", "trajectory", "coaching", "reporting")


def dead_letter_topic(group: str) -> str:
    return f"tweespoor.dlq.{group}.v1"


TOPICS: tuple[Topic, ...] = (
    *(Topic(name) for name in EVENT_TOPICS),
    *(Topic(dead_letter_topic(group), partitions=1) for group in GROUPS),
)
