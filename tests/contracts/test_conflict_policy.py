"""One rule for deciding again after a version conflict (issue 16): every command, timer and
the inbox follow `contracts.commands.retry_on_conflict`, by one policy an installation
may set."""

import pytest
from eventsourcing.persistence import IntegrityError

from contracts.commands import ConflictPolicy, retry_on_conflict
from contracts.problems import Busy


def losing(times: int, answer: str = "done"):
    calls = []

    def command() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise IntegrityError("UNIQUE constraint failed: stored_events")
        return answer

    return command, calls


def test_the_policy_comes_from_the_installation():
    policy = ConflictPolicy.from_env({"TWEESPOOR_CONFLICT_ATTEMPTS": "3", "TWEESPOOR_CONFLICT_MAX_PAUSE": "0.01"})
    assert (policy.attempts, policy.first_pause, policy.max_pause) == (3, 0.005, 0.01)
    assert all(0 <= policy.pause(n) <= 0.01 for n in range(10))
    assert ConflictPolicy.from_env({}) == ConflictPolicy()


def test_a_command_is_decided_again_until_it_wins_then_busy():
    pauses = []
    command, calls = losing(2)
    assert retry_on_conflict(command, policy=ConflictPolicy(attempts=3), sleep=pauses.append) == "done"
    assert len(calls) == 3 and len(pauses) == 2
    command, calls = losing(5)
    with pytest.raises(Busy) as busy:
        retry_on_conflict(command, what="plan", policy=ConflictPolicy(attempts=3), sleep=pauses.append)
    assert len(calls) == 3 and busy.value.status == 503 and busy.value.headers == {"Retry-After": "1"}
    assert "plan" in busy.value.detail


def test_the_winner_having_done_the_work_settles_it_and_the_inbox_keeps_the_error():
    command, calls = losing(1)
    assert retry_on_conflict(command, settled=lambda: "seen", sleep=lambda _: None) == "seen"
    assert len(calls) == 1
    command, calls = losing(9)
    with pytest.raises(IntegrityError):
        retry_on_conflict(command, settled=lambda: None, exhausted="raise",
                          policy=ConflictPolicy(attempts=2), sleep=lambda _: None)
    assert len(calls) == 2
