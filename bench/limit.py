"""Stage a, the limit: what raw aiokafka does with CloudEvents-sized records on this
broker and machine, right now. Every other figure is a share of a limit like this one."""

from __future__ import annotations

import itertools

from bench import kafka_io, workload
from bench.report import Figure

STAGE = "a. limit"


async def measure(bootstrap: str, n: int) -> dict[str, Figure]:
    topic = kafka_io.run_topics("limit")["limit"]
    await kafka_io.create_topics(bootstrap, [topic])
    # Built before the clock starts: this stage times Kafka and the client, not pydantic.
    records = [(topic, key, value, headers)
               for _, key, value, headers in itertools.islice(workload.records(n, seed=1), n)]
    try:
        sent, produce_s = await kafka_io.produce(bootstrap, records)
        back = await kafka_io.consume(bootstrap, [topic])
        read, consume_s = back.records, back.seconds
        # Some of the same records again with the services' own producer, for comparison
        # (a quarter: it is the slow one, and a rate needs no more).
        services_n, services_s = await kafka_io.produce(bootstrap, records[: max(1, n // 4)], services=True)
    finally:
        await kafka_io.delete_topics(bootstrap, [topic])
    assert read == sent == n, f"produced {sent}, read back {read} of {n}"
    raw = n / produce_s
    return {
        "produce": Figure(STAGE, f"produce {n:,} records (idempotent, acks=all, 1 MiB batches)", raw,
                          "records/s"),
        "consume": Figure(STAGE, f"consume {n:,} records back (as the rebuild reads)", n / consume_s,
                          "records/s"),
        "round_trip": Figure(STAGE, "round trip: produce then consume", n / (produce_s + consume_s),
                             "records/s", note="the limit for end to end"),
        "services": Figure(STAGE, f"produce {services_n:,} with the services' producer (contracts.kafka)",
                           services_n / services_s,
                           "records/s", limit_name="raw produce", limit=raw,
                           note="aiokafka's default 16 KiB batches"),
    }
