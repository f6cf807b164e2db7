"""Replicas of a service starting at once on a new PostgreSQL database race to create the
same tables (CREATE TABLE IF NOT EXISTS is not safe under concurrency: a duplicate
pg_type key, or "tuple concurrently updated"). Without the retry in
ServiceApplication.construct_recorder most of them fail to start."""

from __future__ import annotations

import threading
import uuid

from coaching.application import CoachingApplication
from contracts.service import store_env


def test_replicas_starting_at_once_on_a_new_database_all_start(postgres):
    failures: list[str] = []
    for _ in range(3):
        name = f"startup_{uuid.uuid4().hex[:8]}"
        postgres.create_database(name)
        env = store_env(postgres.url(name))
        barrier = threading.Barrier(4)

        def start() -> None:
            barrier.wait()
            try:
                CoachingApplication(env).close()
            except Exception as error:  # noqa: BLE001 - every failure to start counts
                failures.append(type(error).__name__)

        replicas = [threading.Thread(target=start) for _ in range(4)]
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.join()
    assert failures == []
