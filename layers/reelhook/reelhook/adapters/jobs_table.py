"""DynamoDB access for jobs. Every state change is one conditional write.

Item layout (one table, key ``pk``):
- ``job#<id>``: the job. Non-terminal jobs carry ``active_shard`` and ``next_check_at``,
  which feed the sparse ``active-index`` that the poller/reconciler queries. A terminal job
  stays in that index until the notifier records its event as published
  (``event_published_at``), so the poll worker can re-publish an event the stream lost.
  ``expires_at`` (the table's TTL) is set by the terminal transition only: a job in flight
  is never deleted.
  Jobs also carry ``owner`` (reelhook.owners), which feeds the ``owner-index`` (owner,
  created_at) that ``GET /v1/jobs`` queries, newest first.
- ``idem#<sha256(owner, Idempotency-Key)>``: the idempotency record, written in the same
  transaction as the job it names. Keys are per owner: one caller cannot take another's.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from reelhook import clock
from reelhook.adapters.aws import client
from reelhook.adapters.dynamo_types import from_attribute, to_attribute
from reelhook.config import settings
from reelhook.records import record
from reelhook.states import ALLOWED_FROM, TERMINAL, Status

ACTIVE_INDEX = "active-index"
# What the scheduled poller reads of a due job to queue its check (polling.dispatch_due
# and next_interval).
DUE_FIELDS = ("id", "next_check_at", "check_queued_for", "provider", "poll_count")
OWNER_INDEX = "owner-index"
# Index reads one page of GET /v1/jobs may take when its filters match few jobs.
MAX_LIST_READS = 8


class IdempotencyMismatch(Exception):
    """The Idempotency-Key was used before with a different body."""


@record
class Transition:
    applied: bool
    found: bool
    job: dict[str, Any] | None  # the new item when applied, the current one when not

    def seen_delivery(self, delivery_id: str | None) -> bool:
        """True when this write was refused because the delivery was already applied."""
        return bool(not self.applied and delivery_id and self.job and delivery_id in self.job.get("webhook_ids", ()))


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"job#{job_id}"}}


def active_shard(job_id: str) -> str:
    return str(zlib.crc32(job_id.encode()) % settings().active_shards)


def to_dynamo(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in value.items()}


def from_dynamo(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}


def idempotency_pk(key: str, owner: str) -> str:
    # The owner and the key are length-prefixed so no two (owner, key) pairs hash the same input.
    return "idem#" + hashlib.sha256(f"{len(owner)}:{owner}{key}".encode()).hexdigest()


class JobStore:
    def __init__(self, table_name: str | None = None) -> None:
        self.table = table_name or settings().jobs_table

    @property
    def _ddb(self) -> Any:
        return client("dynamodb")

    def create(
        self, job: dict[str, Any], *, idempotency_key: str | None, body_hash: str, ttl: int
    ) -> tuple[dict[str, Any], bool]:
        """Store a new job; with a key, atomically with its idempotency record.

        Returns ``(job, created)``. A reused key (per ``job["owner"]``) with the same body
        returns the first job; with another body it raises ``IdempotencyMismatch``.
        """
        item = to_dynamo({**job, "pk": f"job#{job['id']}"})
        record_pk = idempotency_pk(idempotency_key, str(job["owner"])) if idempotency_key is not None else ""
        if idempotency_key is None:
            self._ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
            return job, True
        record = to_dynamo(
            {"pk": record_pk, "job_id": job["id"], "body_hash": body_hash, "expires_at": ttl}
        )
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self.table, "Item": record,
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": self.table, "Item": item,
                             "ConditionExpression": "attribute_not_exists(pk)"}},
                ]
            )
            return job, True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
        existing = self._ddb.get_item(
            TableName=self.table, Key={"pk": {"S": record_pk}}, ConsistentRead=True
        ).get("Item")
        if existing is None:  # cancelled for another reason (throttling, conflict): let the caller retry
            raise RuntimeError("the job could not be stored; retry the request")
        first = from_dynamo(existing)
        if first["body_hash"] != body_hash:
            raise IdempotencyMismatch(first["job_id"])
        stored = self.get(first["job_id"], consistent=True)
        if stored is None:
            raise RuntimeError("the idempotency record names a job that does not exist")
        return stored, False

    def owned_jobs(
        self, owner: str, *, created_after: str | None, created_before: str | None, filters: Mapping[str, str],
        limit: int, start_key: Mapping[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` of ``owner``'s jobs, newest first, from the owner-index (never a Scan).

        ``filters`` (attribute: value) apply after the index reads, so one page may read
        more than it returns: the loop reads on until the page is full or the owner's jobs
        run out, and hands back where to go on from (a key of this index) or None.
        """
        names = {"#owner": "owner"}
        values: dict[str, Any] = {":owner": owner}
        key_condition = "#owner = :owner"
        if created_after is not None or created_before is not None:
            names["#created"] = "created_at"
        if created_after is not None and created_before is not None:
            key_condition += " AND #created BETWEEN :after AND :before"
            values |= {":after": created_after, ":before": created_before}
        elif created_after is not None:
            key_condition += " AND #created >= :after"
            values[":after"] = created_after
        elif created_before is not None:
            key_condition += " AND #created <= :before"
            values[":before"] = created_before
        kwargs: dict[str, Any] = {"TableName": self.table, "IndexName": OWNER_INDEX, "ScanIndexForward": False,
                                  "KeyConditionExpression": key_condition}
        conditions = []
        for index, (name, value) in enumerate(sorted(filters.items())):
            names[f"#f{index}"] = name
            values[f":f{index}"] = value
            conditions.append(f"#f{index} = :f{index}")
        if conditions:
            kwargs["FilterExpression"] = " AND ".join(conditions)
        kwargs["ExpressionAttributeNames"] = names
        kwargs["ExpressionAttributeValues"] = to_dynamo(values)
        if start_key:
            # The owner comes from the caller, never from the cursor: no cursor reaches another's jobs.
            kwargs["ExclusiveStartKey"] = {**start_key, "owner": {"S": owner}}
        found: list[dict[str, Any]] = []
        last_returned: dict[str, Any] | None = None
        for _ in range(MAX_LIST_READS):
            # One more than is missing: a full page then also tells whether more follow.
            page = self._ddb.query(**kwargs, Limit=limit - len(found) + 1)
            for item in page.get("Items", []):
                if len(found) == limit:
                    return found, _owner_index_key(last_returned)
                found.append(_public_item(from_dynamo(dict(item))))
                last_returned = item
            if "LastEvaluatedKey" not in page:
                return found, None
            if len(found) == limit:
                return found, _owner_index_key(last_returned)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        # Filters that match little: a short page, and the cursor goes on from what was read.
        return found, page["LastEvaluatedKey"]

    def get(self, job_id: str, *, consistent: bool = False) -> dict[str, Any] | None:
        found = self._ddb.get_item(TableName=self.table, Key=job_key(job_id), ConsistentRead=consistent).get("Item")
        return _public_item(from_dynamo(found)) if found else None

    def transition(
        self,
        job_id: str,
        target: Status,
        *,
        now_iso: str,
        event: Mapping[str, Any],
        provider: str | None = None,
        task_id: str | None = None,
        adopt_task_id: bool = True,
        set_fields: Mapping[str, Any] | None = None,
        remove_fields: Sequence[str] = (),
        allowed_from: frozenset[Status] | None = None,
        delivery_id: str | None = None,
        unless_fields: Sequence[str] = (),
        unless_failover: str | None = None,
        when_equal: Mapping[str, str] | None = None,
    ) -> Transition:
        """Move a job to ``target`` if, and only if, its current status allows it.

        ``delivery_id`` (a webhook's id) is remembered in the same write and a second
        delivery with that id is refused by the condition, at no extra request. The write
        is also refused while the job has any of ``unless_fields``, and unless each field of
        ``when_equal`` holds its value (a cancel names the job's owner). ``task_id`` must be
        the job's task, or (with ``adopt_task_id``) becomes it if the job has none yet.
        """
        names: dict[str, str] = {"#status": "status"}
        values: dict[str, Any] = {
            ":to": target.value,
            ":now": now_iso,
            ":event": [dict(event)],
            ":empty": [],
        }
        sets = ["#status = :to", "updated_at = :now", "events = list_append(if_not_exists(events, :empty), :event)"]
        sources = sorted(allowed_from if allowed_from is not None else ALLOWED_FROM[target])
        placeholders = []
        for index, status in enumerate(sources):
            values[f":from{index}"] = status.value
            placeholders.append(f":from{index}")
        conditions = ["attribute_exists(pk)", f"#status IN ({', '.join(placeholders)})"]
        if provider is not None:
            names["#provider"] = "provider"
            values[":provider"] = provider
            conditions.append("#provider = :provider")
        adds = []
        if delivery_id is not None:
            values[":delivery"] = delivery_id
            values[":deliveries"] = {delivery_id}
            conditions.append("NOT contains(webhook_ids, :delivery)")
            adds.append("webhook_ids :deliveries")
        if task_id is not None:
            values[":tid"] = task_id
            if adopt_task_id:
                conditions.append("(attribute_not_exists(provider_task_id) OR provider_task_id = :tid)")
                sets.append("provider_task_id = :tid")
            else:
                conditions.append("provider_task_id = :tid")
        for index, name in enumerate(unless_fields):
            names[f"#u{index}"] = name
            conditions.append(f"attribute_not_exists(#u{index})")
        for index, (name, value) in enumerate((when_equal or {}).items()):
            names[f"#w{index}"] = name
            values[f":w{index}"] = value
            conditions.append(f"#w{index} = :w{index}")
        if unless_failover is not None:
            # Refused for a job whose routing says to move on instead; the caller then decides.
            values[":policy"] = unless_failover
            conditions.append("(attribute_not_exists(routing.failover) OR routing.failover <> :policy)")
        removals = list(remove_fields)
        extra = dict(set_fields or {})
        if target in TERMINAL:
            now = int(clock.now())
            conf = settings()
            # The TTL counts from here; the job stays in the active-index (looked at again after
            # the grace period) until the notifier records its event as published.
            extra |= {"expires_at": now + conf.job_ttl_days * 86400,
                      "next_check_at": now + conf.event_republish_after_seconds,
                      "active_shard": active_shard(job_id)}
        for index, (name, value) in enumerate(extra.items()):
            if name in removals:
                continue
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            sets.append(f"#s{index} = :s{index}")
        expression = "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        if removals:
            for index, name in enumerate(removals):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removals)))
        try:
            answer = self._ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            return Transition(applied=False, found=old is not None,
                              job=_public_item(from_dynamo(old)) if old else None)
        return Transition(applied=True, found=True, job=_public_item(from_dynamo(answer["Attributes"])))

    def remember_delivery(self, job_id: str, delivery_id: str) -> None:
        """Record a verified webhook id that changed nothing, so that no later delivery with
        the same id (a replay, whatever its body) is ever applied. Idempotent."""
        try:
            self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id), UpdateExpression="ADD webhook_ids :deliveries",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_dynamo({":deliveries": {delivery_id}}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def update_fields(
        self, job_id: str, fields: Mapping[str, Any], *, only_if_status: Sequence[Status]
    ) -> bool:
        """Set bookkeeping fields (not the status) while the job is in one of ``only_if_status``."""
        names = {f"#f{i}": name for i, name in enumerate(fields)} | {"#status": "status"}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        values |= {f":st{i}": s.value for i, s in enumerate(only_if_status)}
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=job_key(job_id),
                UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
                ConditionExpression=f"attribute_exists(pk) AND #status IN "
                f"({', '.join(f':st{i}' for i in range(len(only_if_status)))})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_dynamo(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def count_task_missing(self, job_id: str, status: Status, task_id: str) -> int | None:
        """Add one to the 404s in a row of the job's status GET; the new count, or None when
        the job moved on (another status or task) meanwhile."""
        try:
            answer = self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression="ADD task_missing_polls :one",
                ConditionExpression="#status = :status AND provider_task_id = :tid",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_dynamo({":one": 1, ":status": status.value, ":tid": task_id}),
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return int(from_dynamo(answer["Attributes"])["task_missing_polls"])

    def mark_published(self, job_id: str, status: str, *, at_iso: str, notification_queued: bool) -> bool:
        """Record that the terminal job's event was put on the bus (and its notification queued),
        and take it out of the active-index. False when already recorded or no longer so."""
        sets = "event_published_at = :at" + (", notify_queued_at = :at" if notification_queued else "")
        try:
            self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression=f"SET {sets} REMOVE active_shard, next_check_at",
                ConditionExpression="#status = :status AND attribute_not_exists(event_published_at)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_dynamo({":at": at_iso, ":status": status}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def leave_active_index(self, job_id: str) -> bool:
        """Take a terminal job whose event is recorded out of the active-index."""
        try:
            self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression="REMOVE active_shard, next_check_at",
                ConditionExpression="attribute_exists(event_published_at)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_submit(self, job_id: str, now_iso: str, *, provider: str) -> bool:
        """Take the one right to send this job's create request to ``provider``. False if it is
        taken, or the job moved on (to another status, or to another provider's route).

        Once claimed, a job is never sent again by anyone: if the claimant dies mid-send, the
        provider may have a task, and the reconciler fails the job as an unknown outcome. The
        provider is part of the condition: a caller that read the job before it failed over
        must not send it to the provider it left.
        """
        try:
            self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression="SET submit_started_at = :now REMOVE waiting_for",
                ConditionExpression=("attribute_exists(pk) AND #status = :queued AND #provider = :provider"
                                     " AND attribute_not_exists(submit_started_at)"),
                ExpressionAttributeNames={"#status": "status", "#provider": "provider"},
                ExpressionAttributeValues=to_dynamo({":now": now_iso, ":queued": Status.QUEUED.value,
                                                     ":provider": provider}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_submit(self, job_id: str, claimed_at: str, fields: Mapping[str, Any]) -> bool:
        """Give the claim back after a refusal that certainly made no task (429/503, never sent)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)} | {"#status": "status"}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        values |= {":queued": Status.QUEUED.value, ":claimed": claimed_at}
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        try:
            self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression=(f"SET {sets} " if sets else "") + "REMOVE submit_started_at",
                ConditionExpression="#status = :queued AND submit_started_at = :claimed",
                ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def switch_route(
        self,
        job_id: str,
        *,
        from_provider: str,
        route: Mapping[str, str],
        attempt: Mapping[str, Any],
        event: Mapping[str, Any],
        now_iso: str,
        set_fields: Mapping[str, Any],
        claimed_at: str | None = None,
        task_id: str | None = None,
    ) -> Transition:
        """Move a job from ``from_provider`` to another route: queued again, the attempt closed.

        One conditional write. Who may move it: the holder of its submit claim (``claimed_at``),
        the status that reports its task failed (``task_id``, while submitted or running), or,
        with neither, anyone while it is queued and unclaimed.
        """
        names = {"#status": "status", "#provider": "provider"}
        values: dict[str, Any] = {
            ":queued": Status.QUEUED.value, ":old": from_provider, ":new": route["provider"], ":route": dict(route),
            ":attempt": [dict(attempt)], ":event": [dict(event)], ":empty": [], ":now": now_iso, ":zero": 0,
        }
        conditions = ["attribute_exists(pk)", "#provider = :old"]
        if task_id is not None:
            values |= {":tid": task_id, ":submitted": Status.SUBMITTED.value, ":running": Status.RUNNING.value}
            conditions += ["#status IN (:submitted, :running)", "provider_task_id = :tid"]
        elif claimed_at is not None:
            values[":claimed"] = claimed_at
            conditions += ["#status = :queued", "submit_started_at = :claimed"]
        else:
            conditions += ["#status = :queued", "attribute_not_exists(submit_started_at)"]
        sets = ["#status = :queued", "#provider = :new", "route = :route", "updated_at = :now", "poll_count = :zero",
                "attempts = list_append(if_not_exists(attempts, :empty), :attempt)",
                "events = list_append(if_not_exists(events, :empty), :event)"]
        for index, (name, value) in enumerate(set_fields.items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            sets.append(f"#s{index} = :s{index}")
        # Everything that belonged to the attempt that ended.
        removed = ("submit_started_at", "provider_task_id", "waiting_for", "submit_refusals", "last_submit_error",
                   "progress", "task_missing_polls", "last_poll_error")
        try:
            answer = self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removed),
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names, ExpressionAttributeValues=to_dynamo(values),
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            return Transition(applied=False, found=old is not None, job=_public_item(from_dynamo(old)) if old else None)
        return Transition(applied=True, found=True, job=_public_item(from_dynamo(answer["Attributes"])))

    def claim_check(self, job_id: str, *, due: int, next_check_at: int,
                    queued_by_worker: bool = False) -> dict[str, Any] | None:
        """Take a due job for one check: move ``next_check_at`` on, if it is still ``due``.

        Returns the job (one write, no read) or None when another worker took it, or it
        moved on, since it was dispatched. ``queued_by_worker``: the worker queues the next
        check itself, and says so in ``check_queued_for`` so that the schedule does not.
        """
        update = "SET next_check_at = :next, poll_count = if_not_exists(poll_count, :zero) + :one"
        if queued_by_worker:
            update += ", check_queued_for = :next"
        try:
            answer = self._ddb.update_item(
                TableName=self.table, Key=job_key(job_id),
                UpdateExpression=update,
                ConditionExpression="next_check_at = :due",
                ExpressionAttributeValues=to_dynamo({":next": next_check_at, ":due": due, ":zero": 0, ":one": 1}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _public_item(from_dynamo(answer["Attributes"]))

    def get_many(self, job_ids: Iterable[str], *, consistent: bool = False) -> dict[str, dict[str, Any]]:
        """Each existing job of ``job_ids``, by id, in one BatchGetItem per 100 (missing ones left out)."""
        jobs = (_public_item(from_dynamo(item)) for item in self._batch_get(job_ids, consistent=consistent))
        return {job["id"]: job for job in jobs}

    def statuses(self, job_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Each existing job's status and current provider (consistent reads; jobs that do not
        exist are left out)."""
        items = self._batch_get(job_ids, consistent=True, projection={
            "ProjectionExpression": "id, #status, #provider",
            "ExpressionAttributeNames": {"#status": "status", "#provider": "provider"}})
        return {item["id"]["S"]: (item["status"]["S"], item.get("provider", {}).get("S", "")) for item in items}

    def _batch_get(self, job_ids: Iterable[str], *, consistent: bool,
                   projection: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        ids = sorted(set(job_ids))
        for start in range(0, len(ids), 100):  # BatchGetItem's limit
            request: dict[str, Any] = {self.table: {
                "Keys": [job_key(job_id) for job_id in ids[start:start + 100]], "ConsistentRead": consistent,
                **(projection or {})}}
            while request:
                answer = self._ddb.batch_get_item(RequestItems=request)
                yield from answer["Responses"].get(self.table, [])
                request = answer.get("UnprocessedKeys") or {}
                if request:
                    time.sleep(0.1)  # throttled: give the table a moment

    def due_jobs(self, now_epoch: int, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Non-terminal jobs whose ``next_check_at`` has passed, across every shard."""
        for shard in range(settings().active_shards):
            yield from self.due_in_shard(shard, now_epoch, limit=limit)

    def due_in_shard(self, shard: int, now_epoch: int, *, limit: int = 100) -> Iterator[dict[str, Any]]:
        """One shard's jobs whose ``next_check_at`` is at or before ``now_epoch``, each with only
        what scheduling its check reads (``DUE_FIELDS``): a whole job is a few KB, and a pass
        reads every due job."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": ACTIVE_INDEX,
            "KeyConditionExpression": "active_shard = :shard AND next_check_at <= :now",
            "ExpressionAttributeValues": {":shard": {"S": str(shard)}, ":now": {"N": str(now_epoch)}},
            "ProjectionExpression": ", ".join(f"#{name}" for name in DUE_FIELDS),
            "ExpressionAttributeNames": {f"#{name}": name for name in DUE_FIELDS},
            "Limit": limit,
        }
        while True:
            page = self._ddb.query(**kwargs)
            for item in page.get("Items", []):
                yield _public_item(from_dynamo(item))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _owner_index_key(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Where a query of the owner-index goes on from after ``item`` (the table's and the index's keys)."""
    if item is None:
        return None
    return {name: item[name] for name in ("pk", "owner", "created_at")}


def _public_item(item: dict[str, Any]) -> dict[str, Any]:
    item.pop("pk", None)
    return item
