"""Task records and the thread-safe store the server, the ticker and tests share."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FAIL_MARKER = "FAIL_ME"


def fail_marker(provider: str) -> str:
    """A prompt holding this fails its task at ``provider`` only (e.g. FAIL_ON_FREEPIK)."""
    return f"FAIL_ON_{provider.upper()}"


# Tasks whose prompt holds these stay running for ever; a vanished one also answers 404 on
# every status GET (the provider lost it).
NEVER_FINISH_MARKER = "NEVER_FINISH"
VANISH_MARKER = "TASK_VANISHES"
# A task whose prompt holds this completes, but every GET of its result serves non-video bytes.
NOT_VIDEO_MARKER = "NOT_VIDEO_ALWAYS"


class Phase(StrEnum):
    """Where a task is, independent of each provider's words for it."""

    SUBMITTED = "submitted"
    RUNNING = "running"
    RESULTS_PENDING = "results_pending"  # reported as completed, but with no results yet
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({Phase.COMPLETED, Phase.FAILED})


@dataclass
class StatusChange:
    phase: Phase
    status: str  # the provider's word for the phase
    at: float


@dataclass
class WebhookDelivery:
    """One webhook as finally delivered (or given up on) after its attempts."""

    delivery_id: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: str  # the task status the webhook reported
    response_status: int | None  # None when no attempt got an HTTP answer
    attempts: int
    error: str | None
    sent_at: float
    copy: int = 0  # 0 for the first copy; more when Faults.webhook_copies_max duplicates it

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Task:
    task_id: str
    provider: str  # "freepik", "uniall" or "aihubmax"
    model: str  # e.g. "veo-3-1", "kling-v3-omni-pro", "veo3.1-video-720p"
    path: str  # the create path below the provider prefix
    body: dict[str, Any]  # the create request as received
    statuses: dict[Phase, str]  # the provider's vocabulary
    created_at: float
    will_fail: bool = False
    never_finishes: bool = False
    vanished: bool = False
    serves_not_video: bool = False
    early_completed: bool = False  # pass through RESULTS_PENDING before COMPLETED
    mode: str | None = None  # input mode, for providers that have several
    webhook_url: str | None = None
    phase: Phase = Phase.SUBMITTED
    phase_since: float = 0.0
    reported: bool = False  # the current phase has been shown to the client (poll or webhook)
    completed_at: float | None = None
    link_expires_at: float | None = None
    history: list[StatusChange] = field(default_factory=list)
    deliveries: list[WebhookDelivery] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.statuses[self.phase]

    @property
    def status_history(self) -> list[str]:
        return [change.status for change in self.history]

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def next_phase(self) -> Phase | None:
        if self.phase is Phase.SUBMITTED:
            return Phase.RUNNING
        if self.phase is Phase.RUNNING:
            if self.never_finishes or self.vanished:
                return None
            if self.will_fail:
                return Phase.FAILED
            return Phase.RESULTS_PENDING if self.early_completed else Phase.COMPLETED
        if self.phase is Phase.RESULTS_PENDING:
            return Phase.COMPLETED
        return None


def new_task(
    *,
    task_id: str,
    provider: str,
    model: str,
    path: str,
    body: dict[str, Any],
    statuses: dict[Phase, str],
    prompt: str | None,
    now: float,
    mode: str | None = None,
    webhook_url: str | None = None,
    early_completed: bool = False,
) -> Task:
    task = Task(
        task_id=task_id,
        provider=provider,
        model=model,
        path=path,
        body=copy.deepcopy(body),
        statuses=statuses,
        created_at=now,
        will_fail=FAIL_MARKER in (prompt or "") or fail_marker(provider) in (prompt or ""),
        never_finishes=NEVER_FINISH_MARKER in (prompt or ""),
        vanished=VANISH_MARKER in (prompt or ""),
        serves_not_video=NOT_VIDEO_MARKER in (prompt or ""),
        early_completed=early_completed,
        mode=mode,
        webhook_url=webhook_url,
        phase_since=now,
    )
    task.history.append(StatusChange(Phase.SUBMITTED, task.status, now))
    return task


class TaskStore(Mapping[str, Task]):
    """All tasks, by id. Reads hand out deep copies, so callers never race the ticker."""

    def __init__(self, on_add: Callable[[Task], None] | None = None) -> None:
        self._lock = threading.RLock()
        self._tasks: dict[str, Task] = {}
        self._on_add = on_add  # told of each new task (the sandbox counts the faulty ones)
        # Set at every change that can let a task move on: the ticker sleeps on it while none can.
        self.changed = threading.Event()

    def movable(self) -> bool:
        """Whether any task can move on by time alone (not terminal, not awaiting a status read)."""
        with self._lock:
            return any(task.next_phase() is not None
                       and not (task.phase is Phase.RESULTS_PENDING and not task.reported)
                       for task in self._tasks.values())

    def __getitem__(self, task_id: str) -> Task:
        with self._lock:
            return copy.deepcopy(self._tasks[task_id])

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._tasks))

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks)

    def add(self, task: Task) -> None:
        with self._lock:
            if task.task_id in self._tasks:
                raise ValueError(f"duplicate task id {task.task_id}")
            self._tasks[task.task_id] = task
        self.changed.set()
        if self._on_add is not None:
            self._on_add(task)

    def observe(self, task_id: str) -> Task | None:
        """A snapshot for a status read; marks the current phase as seen by the client."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            task.reported = True
            self.changed.set()  # a task awaiting this read may move on now
            return copy.deepcopy(task)

    def mark_reported(self, task_id: str) -> None:
        with self._lock:
            self._tasks[task_id].reported = True
        self.changed.set()

    def due(self, now: float, step_seconds: float, link_ttl: float) -> list[Task]:
        """Move every task whose step has elapsed one phase on; return snapshots of those moved.

        RESULTS_PENDING is only left once the client has seen it, so a poller always gets
        the early "completed without results" answer exactly as the provider is said to.
        """
        moved: list[Task] = []
        with self._lock:
            for task in self._tasks.values():
                target = task.next_phase()
                if target is None or now - task.phase_since < step_seconds:
                    continue
                if task.phase is Phase.RESULTS_PENDING and not task.reported:
                    continue
                self._enter(task, target, now, link_ttl)
                moved.append(copy.deepcopy(task))
        return moved

    def advance(self, task_id: str, now: float, link_ttl: float) -> Task | None:
        """Move one task one phase on at once; None if it is already terminal."""
        with self._lock:
            task = self._tasks[task_id]
            target = task.next_phase()
            if target is None:
                return None
            self._enter(task, target, now, link_ttl)
            self.changed.set()
            return copy.deepcopy(task)

    def force(self, task_id: str, phase: Phase, now: float, link_ttl: float) -> Task:
        """Put a task in any phase (even backwards or the same one again)."""
        with self._lock:
            task = self._tasks[task_id]
            self._enter(task, phase, now, link_ttl)
            self.changed.set()
            return copy.deepcopy(task)

    def add_delivery(self, task_id: str, delivery: WebhookDelivery) -> None:
        with self._lock:
            self._tasks[task_id].deliveries.append(delivery)

    def of(self, provider: str, models: frozenset[str] | None = None) -> list[Task]:
        """Snapshots of one provider's tasks (optionally of some models), oldest first."""
        with self._lock:
            return [
                copy.deepcopy(task)
                for task in self._tasks.values()
                if task.provider == provider and (models is None or task.model in models)
            ]

    @staticmethod
    def _enter(task: Task, phase: Phase, now: float, link_ttl: float) -> None:
        task.phase = phase
        task.phase_since = now
        task.reported = False
        if phase is Phase.COMPLETED:
            task.completed_at = now
            task.link_expires_at = now + link_ttl
        task.history.append(StatusChange(phase, task.status, now))
