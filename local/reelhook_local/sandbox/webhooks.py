"""The webhook sender: a small pool of workers, with the delivery faults of ``Faults``.

Without faults every webhook is sent once, and a task's webhooks arrive in the order its
statuses changed (each task has a lane drained by one worker at a time), while different
tasks' webhooks go out in parallel, so one slow receiver does not hold up the rest.

With faults, each real webhook may be dropped, sent several times, delayed by a random
jitter, held and released in a random order together with the task's other webhooks
(``webhook_shuffle``), and accompanied by a forged delivery (see ``faults.forge``).
A failed delivery (connection error or 5xx) is retried with backoff; forged ones are not.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from .config import SandboxConfig
from .faults import DroppedWebhook, FaultCounters, ForgedDelivery, Forgery, forge, forgeable_kinds
from .protocol import Outgoing
from .tasks import Task, TaskStore, WebhookDelivery

log = logging.getLogger("reelhook_local.sandbox")

Work = Callable[[], None]


class SenderHost(Protocol):
    """What the sender needs from the sandbox."""

    config: SandboxConfig
    tasks: TaskStore
    counters: FaultCounters

    @property
    def root_url(self) -> str: ...

    def now(self) -> float: ...


@dataclass
class _Job:
    """One delivery to make: a copy of a real webhook, or a forged one."""

    task_id: str
    outgoing: Outgoing
    copy: int = 0  # 0 for the first copy of a real webhook
    delay: float = 0.0  # seconds to wait first (jitter, in a task's lane)
    forgery: Forgery | None = None
    then: list[Forgery] = field(default_factory=list)  # forgeries to send once this was sent


@dataclass
class _Hold:
    """A task's webhooks held back for a shuffled release."""

    generation: int
    jobs: list[_Job] = field(default_factory=list)


@dataclass(order=True)
class _Timer:
    due: float
    sequence: int
    work: Work = field(compare=False)


class WebhookSender:
    def __init__(self, host: SenderHost, stopping: threading.Event) -> None:
        self.host = host
        self._stopping = stopping
        self._cond = threading.Condition()
        self._pending = 0  # deliveries queued, held, scheduled or in flight
        self._work: queue.Queue[Work | None] = queue.Queue()
        self._timers: list[_Timer] = []
        self._sequence = itertools.count()
        self._lanes: dict[str, deque[_Job]] = {}  # per task, when not shuffling
        self._held: dict[str, _Hold] = {}  # per task, when shuffling
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._records_lock = threading.Lock()
        self._forged: list[ForgedDelivery] = []
        self._dropped: list[DroppedWebhook] = []
        self._workers = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def threads(self) -> list[threading.Thread]:
        """The dispatcher (timers) and the workers, not yet started."""
        self._workers = max(1, self.host.config.webhook_workers)
        threads = [threading.Thread(target=self._dispatch_loop, name="sandbox-webhook-timer", daemon=True)]
        threads += [
            threading.Thread(target=self._work_loop, name=f"sandbox-webhooks-{n}", daemon=True)
            for n in range(self._workers)
        ]
        return threads

    def wake(self) -> None:
        """Let every thread notice that the sandbox is stopping."""
        for _ in range(self._workers):
            self._work.put(None)
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """After the threads stopped: forget what was never sent and close the HTTP clients."""
        with self._cond:
            self._work = queue.Queue()
            self._timers.clear()
            self._lanes.clear()
            self._held.clear()
            self._pending = 0
            self._cond.notify_all()
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    # -- records -------------------------------------------------------------------------------

    @property
    def forged_deliveries(self) -> list[ForgedDelivery]:
        with self._records_lock:
            return list(self._forged)

    @property
    def dropped_webhooks(self) -> list[DroppedWebhook]:
        with self._records_lock:
            return list(self._dropped)

    # -- queueing --------------------------------------------------------------------------------

    def enqueue(self, task: Task, outgoing: list[Outgoing]) -> None:
        """Schedule the webhooks for ``task``'s new status, applying the configured faults."""
        for item in outgoing:
            self._enqueue_one(task, item)
        if self.host.config.faults.webhook_shuffle and task.terminal:
            self._release(task.task_id)

    def _enqueue_one(self, task: Task, item: Outgoing) -> None:
        config = self.host.config
        faults = config.faults
        now = self.host.now()
        prompt = task.body.get("prompt")
        reason = faults.drops_all_webhooks(task.task_id, prompt if isinstance(prompt, str) else None)
        if reason is None and faults.chance(faults.webhook_drop_rate):
            reason = "rate"
        copies = 0 if reason else faults.randint(1, max(1, faults.webhook_copies_max))
        forgery: Forgery | None = None
        if faults.chance(faults.forged_rate):
            kinds = forgeable_kinds(faults, task, item, dropped=reason is not None)
            if kinds:
                forgery = forge(faults.choice(kinds), task, item, config, self.host.root_url, now)

        jobs = [_Job(task.task_id, item, copy=n) for n in range(copies)]
        with self._cond:
            self._pending += len(jobs) + (forgery is not None)
        if reason is not None:
            self.host.counters.add("webhooks_dropped")
            with self._records_lock:
                self._dropped.append(DroppedWebhook(task.task_id, item.delivery_id, item.status, reason, now))
        else:
            self.host.counters.add("webhook_duplicates", copies - 1)
        if forgery is not None:
            forged_job = _Job(task.task_id, forgery.outgoing, forgery=forgery)
            if forgery.after_original and jobs:
                jobs[0].then.append(forgery)
            else:
                self._work.put(lambda: self._run(forged_job))

        if faults.webhook_shuffle:
            self._hold(task.task_id, jobs)
        else:
            for job in jobs:
                job.delay = faults.uniform(faults.webhook_jitter_seconds)
                self._push_lane(job)

    def _push_lane(self, job: _Job) -> None:
        with self._cond:
            lane = self._lanes.get(job.task_id)
            if lane is not None:
                lane.append(job)
                return
            self._lanes[job.task_id] = deque([job])
        self._work.put(lambda: self._drain_lane(job.task_id))

    def _drain_lane(self, task_id: str) -> None:
        while True:
            with self._cond:
                lane = self._lanes.get(task_id)
                if not lane:
                    self._lanes.pop(task_id, None)
                    return
                job = lane.popleft()
            self._run(job)

    def _hold(self, task_id: str, jobs: list[_Job]) -> None:
        if not jobs:
            return
        with self._cond:
            hold = self._held.get(task_id)
            if hold is None:
                hold = self._held[task_id] = _Hold(next(self._sequence))
                generation = hold.generation
                self._add_timer(self.host.config.faults.webhook_hold_seconds,
                                lambda: self._release(task_id, generation))
            hold.jobs.extend(jobs)

    def _release(self, task_id: str, generation: int | None = None) -> None:
        """Send a task's held webhooks in a random order (each after its own jitter, if any)."""
        with self._cond:
            hold = self._held.get(task_id)
            if hold is None or (generation is not None and hold.generation != generation):
                return
            del self._held[task_id]
        faults = self.host.config.faults
        jobs = hold.jobs
        faults.shuffle(jobs)
        if faults.webhook_jitter_seconds > 0:
            for job in jobs:
                self._add_timer(faults.uniform(faults.webhook_jitter_seconds), lambda job=job: self._run(job))
        else:
            self._work.put(lambda: self._run_all(jobs))

    def _run_all(self, jobs: list[_Job]) -> None:
        for job in jobs:
            self._run(job)

    def _add_timer(self, delay: float, work: Work) -> None:
        with self._cond:
            heapq.heappush(self._timers, _Timer(time.monotonic() + delay, next(self._sequence), work))
            self._cond.notify_all()

    # -- threads ---------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                timer = None
                while not self._stopping.is_set():
                    now = time.monotonic()
                    if self._timers and self._timers[0].due <= now:
                        timer = heapq.heappop(self._timers)
                        break
                    self._cond.wait(self._timers[0].due - now if self._timers else 0.5)
            if timer is not None:
                self._work.put(timer.work)

    def _work_loop(self) -> None:
        while True:
            work = self._work.get()
            if work is None or self._stopping.is_set():
                return
            try:
                work()
            except Exception:
                log.exception("sandbox webhook sender error")

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:  # one per worker, made on first use: building one takes a while
            client = httpx.Client(timeout=self.host.config.webhook_timeout_seconds, trust_env=False)
            self._local.client = client
            with self._cond:
                self._clients.append(client)
        return client

    # -- delivery ----------------------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        try:
            if self._stopping.is_set() or (job.delay and self._stopping.wait(job.delay)):
                return
            if job.forgery is not None:
                self._send_forgery(job.forgery)
                return
            self.host.tasks.add_delivery(job.task_id, self._deliver(job))
            self.host.counters.add("webhooks_sent")
            for forgery in job.then:
                forged_job = _Job(job.task_id, forgery.outgoing, forgery=forgery)
                self._work.put(lambda forged_job=forged_job: self._run(forged_job))
        finally:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def _deliver(self, job: _Job) -> WebhookDelivery:
        config = self.host.config
        item = job.outgoing
        status: int | None = None
        failure: str | None = None
        attempts = 0
        for attempt in range(max(1, config.webhook_attempts)):
            if attempt and self._stopping.wait(config.webhook_backoff_seconds * 2 ** (attempt - 1)):
                break
            attempts += 1
            try:
                status = self._client().post(item.url, content=item.body, headers=item.headers).status_code
                failure = None if status < 500 else f"HTTP {status}"
            except httpx.HTTPError as exc:
                status, failure = None, f"{type(exc).__name__}: {exc}"
            if failure is None:
                break
        if failure:
            # The query holds the job's callback token: a log line never shows it.
            where, _, query = item.url.partition("?")
            log.warning("webhook %s to %s failed after %d attempts: %s", item.delivery_id, where,
                        attempts, failure.replace(query, "…") if query else failure)
        return WebhookDelivery(
            delivery_id=item.delivery_id,
            url=item.url,
            headers=dict(item.headers),
            body=item.body,
            status=item.status,
            response_status=status,
            attempts=attempts,
            error=failure,
            sent_at=self.host.now(),
            copy=job.copy,
        )

    def _send_forgery(self, forgery: Forgery) -> None:
        item = forgery.outgoing
        status: int | None = None
        answer = b""
        failure: str | None = None
        try:
            response = self._client().post(item.url, content=item.body, headers=item.headers)
            status, answer = response.status_code, response.content
        except httpx.HTTPError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        self.host.counters.add("forged_sent")
        record = ForgedDelivery(
            kind=forgery.kind,
            task_id=forgery.task_id,
            claimed_task_id=forgery.claimed_task_id,
            url=item.url,
            headers=dict(item.headers),
            body=item.body,
            response_status=status,
            response_body=answer,
            error=failure,
            sent_at=self.host.now(),
        )
        with self._records_lock:
            self._forged.append(record)
