"""Per-provider circuit breakers, kept in the jobs table so every Lambda sees the same one.

Each provider's circuit lives in its request-budget item (``gov#<provider>#rate``), beside
``tat``: it counts consecutive submit failures. At the threshold the circuit opens until
``open_until``; after that one caller at a time takes a probe (``probe_until``, a conditional
write) and sends a job; a success closes the circuit, a failure opens it again. Every change
is a conditional write, never read-then-write.

Every request-slot reservation answers with that item (``observe``), so a caller that has
just reserved its slot knows the circuit at no extra request. Otherwise reading it costs a
GetItem, so each process keeps what it last saw for ``CACHE_SECONDS``; a success is written
only when this process knows of failures, so a healthy provider costs no request at all.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client
from reelhook.config import settings
from reelhook.records import record

CACHE_SECONDS = 5.0
ITEM_TTL_SECONDS = 7 * 86_400
CircuitName = Literal["closed", "open", "half_open"]


@record
class CircuitState:
    failures: int = 0
    open_until: float = 0.0  # 0: closed
    probe_until: float = 0.0
    opened_at: float = 0.0

    def state(self, now: float) -> CircuitName:
        if not self.open_until:
            return "closed"
        return "open" if now < self.open_until else "half_open"

    def view(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state(now), "consecutive_failures": self.failures}
        if self.open_until:
            out["open_until"] = self.open_until
            out["opened_at"] = self.opened_at
        return out


_known: dict[str, tuple[float, CircuitState]] = {}
_lock = threading.Lock()


def _key(provider: str) -> dict[str, Any]:
    return {"pk": {"S": f"gov#{provider}#rate"}}  # the request-budget item (adapters.governance)


def parse_item(item: dict[str, Any] | None) -> CircuitState:
    """The circuit held in a budget item's raw DynamoDB attributes (none: closed)."""
    item = item or {}

    def number(name: str) -> float:
        return float(item[name]["N"]) if name in item else 0.0

    return CircuitState(int(number("failures")), number("open_until"), number("probe_until"), number("opened_at"))


def _remember(provider: str, state: CircuitState, now: float) -> CircuitState:
    with _lock:
        _known[provider] = (now, state)
    return state


def observe(provider: str, item: dict[str, Any], now: float) -> None:
    """Remember the circuit from the budget item as a write just returned it (ALL_NEW)."""
    _remember(provider, parse_item(item), now)


def read(provider: str, now: float, *, fresh: bool = False) -> CircuitState:
    """The provider's circuit, from this process's memory when it is recent enough."""
    if not fresh:
        with _lock:
            seen = _known.get(provider)
        if seen is not None and now - seen[0] < CACHE_SECONDS:
            return seen[1]
    item = client("dynamodb").get_item(TableName=settings().jobs_table, Key=_key(provider),
                                       ConsistentRead=True).get("Item")
    return _remember(provider, parse_item(item), now)


def record_failure(provider: str, now: float) -> CircuitState:
    """Count one more failure in a row; open the circuit at the threshold (again, after a failed probe)."""
    conf = settings()
    ddb = client("dynamodb")
    answer = ddb.update_item(
        TableName=conf.jobs_table, Key=_key(provider),
        UpdateExpression="ADD failures :one SET last_failure_at = :now, expires_at = :ttl",
        ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": str(now)},
                                   ":ttl": {"N": str(int(now) + ITEM_TTL_SECONDS)}},
        ReturnValues="ALL_NEW",
    )
    state = parse_item(answer["Attributes"])
    if state.failures >= conf.circuit_failure_threshold and state.state(now) != "open":
        until = now + conf.circuit_cooldown_seconds
        seen = {":seen": {"N": str(state.open_until)}} if state.open_until else {}
        try:
            # Opened once however many callers fail at the same moment: the write names the
            # open_until it replaces.
            ddb.update_item(
                TableName=conf.jobs_table, Key=_key(provider),
                UpdateExpression="SET open_until = :until, opened_at = :now REMOVE probe_until",
                ConditionExpression="open_until = :seen" if seen else "attribute_not_exists(open_until)",
                ExpressionAttributeValues={":until": {"N": str(until)}, ":now": {"N": str(now)}} | seen,
            )
            state = CircuitState(state.failures, until, 0.0, now)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            state = read(provider, now, fresh=True)
    return _remember(provider, state, now)


def record_success(provider: str, now: float) -> None:
    """Close the circuit and end the run of failures, when this process knows of any."""
    with _lock:
        seen = _known.get(provider)
    if seen is None or (not seen[1].failures and not seen[1].open_until):
        return
    client("dynamodb").update_item(
        TableName=settings().jobs_table, Key=_key(provider),
        UpdateExpression="SET failures = :zero REMOVE open_until, probe_until, opened_at",
        ExpressionAttributeValues={":zero": {"N": "0"}},
    )
    _remember(provider, CircuitState(), now)


def take_probe(provider: str, now: float, *, window: float) -> bool:
    """Claim the one probe of a half-open circuit for ``window`` seconds; True if this caller has it."""
    try:
        client("dynamodb").update_item(
            TableName=settings().jobs_table, Key=_key(provider),
            UpdateExpression="SET probe_until = :until",
            ConditionExpression="open_until <= :now AND (attribute_not_exists(probe_until) OR probe_until <= :now)",
            ExpressionAttributeValues={":until": {"N": str(now + window)}, ":now": {"N": str(now)}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def usable(provider: str, now: float) -> bool:
    """Whether a job with other routes should send to ``provider`` now."""
    state = read(provider, now)
    name = state.state(now)
    if name == "closed":
        return True
    if name == "open":
        return False
    return take_probe(provider, now, window=min(60.0, float(settings().circuit_cooldown_seconds)))


def forget() -> None:
    """Drop what this process remembers (tests)."""
    with _lock:
        _known.clear()
