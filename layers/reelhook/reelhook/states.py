"""The job state machine: queued → submitted → running → storing → succeeded, or failed.

Transitions only move forward and terminal states are final. The table adapter turns
``ALLOWED_FROM`` into a DynamoDB condition expression, so the rule holds under any
concurrency without a read first.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    STORING = "storing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED})

ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.QUEUED}),
    Status.RUNNING: frozenset({Status.QUEUED, Status.SUBMITTED}),
    Status.STORING: frozenset({Status.QUEUED, Status.SUBMITTED, Status.RUNNING}),
    Status.SUCCEEDED: frozenset({Status.STORING}),
    Status.FAILED: frozenset({Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.STORING}),
}


def can_move(current: Status, target: Status) -> bool:
    return current in ALLOWED_FROM.get(target, frozenset())
