"""Tweespoor's contracts: the only code the four services share.

- `events`: the integration-event catalogue (frozen, versioned pydantic models);
- `envelope`: CloudEvents 1.0 after the NL GOV profile, bound to Kafka records;
- `topics`: the declarative topic list;
- `kafka`, `outbox`, `inbox`: the delivery contract every service keeps —
  publish from the notification log, apply with a tracking record, dead-letter poison.
"""
