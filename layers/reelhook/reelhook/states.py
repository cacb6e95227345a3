"""The job state machine: queued → submitted → running → storing → succeeded, or failed,
or cancelled (by its owner, from any state that is not final).

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
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

ALLOWED_FROM: dict[Status, frozenset[Status]] = {
    Status.SUBMITTED: frozenset({Status.QUEUED}),
    Status.RUNNING: frozenset({Status.QUEUED, Status.SUBMITTED}),
    Status.STORING: frozenset({Status.QUEUED, Status.SUBMITTED, Status.RUNNING}),
    Status.SUCCEEDED: frozenset({Status.STORING}),
    Status.FAILED: frozenset({Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.STORING}),
    Status.CANCELLED: frozenset({Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.STORING}),
}


def can_move(current: Status, target: Status) -> bool:
    return current in ALLOWED_FROM.get(target, frozenset())
