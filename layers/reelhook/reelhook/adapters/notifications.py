"""notify_url bookkeeping on the job item: claim an attempt, then record how it went.

Both are single conditional writes. The claim makes duplicate queue messages (SQS and the
stream are at-least-once) harmless: only one delivery of a given attempt number goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client
from reelhook.adapters.jobs_table import from_dynamo, job_key, to_dynamo
from reelhook.config import settings


def claim_attempt(job_id: str, status: str, attempt: int, *, redelivery: bool) -> dict[str, Any] | None:
    """Mark ``attempt`` as under way; returns the job, or None if it must not be sent.

    Refused when the job is gone, not in ``status``, has no notify_url, was already
    delivered, or this attempt was already claimed (unless this is the same message coming
    back after a failed invocation: ``redelivery``).
    """
    order = "<=" if redelivery else "<"
    try:
        answer = client("dynamodb").update_item(
            TableName=settings().jobs_table,
            Key=job_key(job_id),
            UpdateExpression="SET notify_attempt = :n",
            ConditionExpression=(
                "attribute_exists(pk) AND #status = :status AND attribute_exists(notify_url) "
                "AND attribute_not_exists(notify_delivered_at) "
                f"AND (attribute_not_exists(notify_attempt) OR notify_attempt {order} :n)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_dynamo({":n": attempt, ":status": status}),
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    job = from_dynamo(answer["Attributes"])
    job.pop("pk", None)
    return job


def record_attempt(job_id: str, entry: Mapping[str, Any], *, delivered_at: str | None) -> None:
    """Append ``entry`` to the job's ``notifications``; a delivery also sets ``notify_delivered_at``."""
    expression = "SET notifications = list_append(if_not_exists(notifications, :empty), :entry)"
    values: dict[str, Any] = {":empty": [], ":entry": [dict(entry)]}
    if delivered_at is not None:
        expression += ", notify_delivered_at = :at"
        values[":at"] = delivered_at
    try:
        client("dynamodb").update_item(
            TableName=settings().jobs_table,
            Key=job_key(job_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=to_dynamo(values),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise  # a job that expired meanwhile has nothing left to record on
