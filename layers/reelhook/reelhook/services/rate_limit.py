"""A request budget per provider shared by every concurrent invocation.

Freepik allows 50 requests/s over 5 s and 10 requests/s averaged over 2 minutes. A
budget of 10 per wall-clock second satisfies both (at most 20 in any one second across
a window boundary, 50 in any 5 s, 1,200 in 2 minutes). The count lives in DynamoDB and
is taken with one conditional ADD, so concurrent Lambdas cannot overspend it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client
from reelhook.config import settings
from reelhook.providers import get_provider

MAX_WAIT_SECONDS = 30.0


class RateLimitTimeout(Exception):
    """No budget became free within the wait allowed."""


def try_take(provider: str, per_second: int, now: float) -> bool:
    second = int(now)
    try:
        client("dynamodb").update_item(
            TableName=settings().jobs_table,
            Key={"pk": {"S": f"rate#{provider}#{second}"}},
            UpdateExpression="ADD used :one SET expires_at = if_not_exists(expires_at, :ttl)",
            ConditionExpression="attribute_not_exists(used) OR used < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(per_second)},
                ":ttl": {"N": str(second + 600)},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def before_provider_call(
    provider: str,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Block until this call fits the provider's budget (no-op for providers without one)."""
    per_second = get_provider(provider).requests_per_second
    if per_second is None:
        return
    deadline = clock() + MAX_WAIT_SECONDS
    while True:
        now = clock()
        if try_take(provider, per_second, now):
            return
        if now >= deadline:
            raise RateLimitTimeout(f"no {provider} request budget within {MAX_WAIT_SECONDS:.0f} s")
        sleep(max(0.01, int(now) + 1 - now))
