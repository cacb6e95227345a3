"""Per-provider request slots and in-flight caps, kept in the jobs table for every Lambda at once.

Request rate: a generic cell rate algorithm (GCRA). One item per provider holds ``tat``, the
theoretical arrival time of the next request in microseconds. A reservation is one
conditional write that moves ``tat`` on by one interval and answers when the caller may send:
now, or a definite time later. Callers that get a later time wait for it (briefly) or queue
the work until then, so concurrent callers never spend the same slot and never spin on a
shared second boundary.

In flight: one item per provider holds the set of job ids with a task at the provider. A job
joins with ``ADD`` while the set is smaller than the cap and leaves with ``DELETE``; both are
idempotent, so a retried acquire or release can never count a job twice.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from reelhook.adapters import circuit
from reelhook.adapters.aws import client
from reelhook.config import settings

MICROS = 1_000_000
# Budget items outlive any reservation they hold (DynamoDB TTL removes them when idle).
ITEM_TTL_SECONDS = 86_400


def _rate_key(provider: str) -> dict[str, Any]:
    return {"pk": {"S": f"gov#{provider}#rate"}}


def _in_flight_key(provider: str) -> dict[str, Any]:
    return {"pk": {"S": f"gov#{provider}#in-flight"}}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


# The state each provider's budget was last found in, by this process. Trying that form first
# makes a reservation one write in a steady state, idle or busy; a wrong guess costs one
# refused write, as trying both always did.
_found_idle: dict[str, bool] = {}


def reserve_request_slot(provider: str, per_second: float, burst: int, now: float,
                         *, max_wait: float | None = None) -> float | None:
    """Reserve one request; returns the epoch time at which it may be sent (``now`` or later).

    ``burst`` requests may go at once after a quiet spell; beyond that they are spaced by
    ``1 / per_second``. Busy (``tat`` ahead of now): ``ADD`` one interval. Idle: restart the
    clock at now. The two conditions partition the states, so one of them applies.

    With ``max_wait``, a slot further away than that is not taken at all and None is
    returned: as in GCRA proper, a caller that will not wait for its slot leaves ``tat``
    alone. (Taking and dropping it would move ``tat`` on with every refused caller, so under
    more demand than the rate it would run away from now and no caller would ever get a slot.)
    """
    slots = reserve_request_slots(provider, per_second, burst, now, 1, max_wait=max_wait)
    return None if slots is None else slots[0]


def reserve_request_slots(provider: str, per_second: float, burst: int, now: float, count: int,
                          *, max_wait: float | None = None) -> list[float] | None:
    """Reserve ``count`` consecutive requests in one write; returns when each may be sent.

    A batch of status checks takes its slots together, so the provider's budget item, which
    every Lambda writes, is written once per batch rather than once per request. With
    ``max_wait`` the batch is taken only if its LAST slot comes within it: all or nothing.
    """
    count = max(1, count)
    interval = max(1, round(MICROS / per_second))
    tolerance = (max(1, burst) - 1) * interval
    span = count * interval
    now_us = int(now * MICROS)
    ddb = client("dynamodb")
    table = settings().jobs_table
    ttl = {"N": str(int(now) + ITEM_TTL_SECONDS)}
    busy_condition = "tat >= :now"
    busy_values = {":span": {"N": str(span)}, ":now": {"N": str(now_us)}, ":ttl": ttl}
    if max_wait is not None:
        if (count - 1) * interval - tolerance > max_wait * MICROS:
            return None  # even an idle budget could not give the last one in time
        busy_condition += " AND tat <= :latest"
        busy_values[":latest"] = {"N": str(now_us + tolerance + int(max_wait * MICROS) - (count - 1) * interval)}

    def send_times(first_us: int) -> list[float]:
        """Slot i may go at its theoretical time less the burst tolerance, never before now."""
        return [max(now, (first_us + i * interval - tolerance) / MICROS) for i in range(count)]

    def busy() -> list[float] | None:
        try:
            answer = ddb.update_item(
                TableName=table, Key=_rate_key(provider),
                UpdateExpression="ADD tat :span SET expires_at = :ttl",
                ConditionExpression=busy_condition, ExpressionAttributeValues=busy_values,
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            tat = exc.response.get("Item", {}).get("tat", {}).get("N")
            if max_wait is not None and tat is not None and int(tat) > now_us:
                raise _TooFar from None
            return None
        circuit.observe(provider, answer["Attributes"], now)
        return send_times(int(answer["Attributes"]["tat"]["N"]) - span)  # the first slot this caller holds

    def idle() -> list[float] | None:
        try:
            answer = ddb.update_item(
                TableName=table, Key=_rate_key(provider),
                UpdateExpression="SET tat = :next, expires_at = :ttl",
                ConditionExpression="attribute_not_exists(tat) OR tat < :now",
                ExpressionAttributeValues={":next": {"N": str(now_us + span)}, ":now": {"N": str(now_us)},
                                           ":ttl": ttl},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return None
        circuit.observe(provider, answer["Attributes"], now)
        return send_times(now_us)

    forms = (idle, busy) if _found_idle.get(provider) else (busy, idle)
    try:
        for _ in range(8):
            for form in forms:
                at = form()
                if at is not None:
                    _found_idle[provider] = form is idle
                    return at
    except _TooFar:
        _found_idle[provider] = False
        return None
    raise RuntimeError(f"could not reserve a {provider} request slot")  # pragma: no cover - needs 16 lost races


class _TooFar(Exception):
    """The next slot is further away than the caller will wait (nothing was reserved)."""


def acquire_in_flight(provider: str, job_id: str, cap: int) -> bool:
    """Count ``job_id`` as a task in flight if fewer than ``cap`` are; True if it is counted."""
    try:
        client("dynamodb").update_item(
            TableName=settings().jobs_table, Key=_in_flight_key(provider),
            UpdateExpression="ADD jobs :job",
            ConditionExpression="attribute_not_exists(jobs) OR size(jobs) < :cap OR contains(jobs, :id)",
            ExpressionAttributeValues={":job": {"SS": [job_id]}, ":id": {"S": job_id}, ":cap": {"N": str(cap)}},
        )
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


def release_in_flight(provider: str, job_id: str) -> None:
    """Forget ``job_id`` as in flight (a no-op when it was not counted)."""
    client("dynamodb").update_item(
        TableName=settings().jobs_table, Key=_in_flight_key(provider),
        UpdateExpression="DELETE jobs :job", ExpressionAttributeValues={":job": {"SS": [job_id]}},
    )


def in_flight(provider: str) -> set[str]:
    item = client("dynamodb").get_item(TableName=settings().jobs_table, Key=_in_flight_key(provider),
                                       ConsistentRead=True).get("Item") or {}
    return set(item.get("jobs", {}).get("SS", []))


def budget_items(providers: list[str]) -> dict[str, dict[str, Any]]:
    """Each provider's rate (with its circuit) and in-flight items (raw DynamoDB attributes), in one batch read."""
    table = settings().jobs_table
    keys = [{"pk": {"S": f"gov#{p}#{kind}"}} for p in providers for kind in ("rate", "in-flight")]
    found: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    for _ in range(5):  # unprocessed keys come back under throttling; a few rounds are plenty here
        answer = client("dynamodb").batch_get_item(RequestItems=request)
        for item in answer["Responses"].get(table, []):
            found[item["pk"]["S"]] = item
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    return found
