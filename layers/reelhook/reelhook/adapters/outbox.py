"""S3 for the inbox: read a job manifest, write and remove outbox documents."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


def read_object(bucket: str, key: str, *, max_bytes: int) -> bytes | None:
    """At most ``max_bytes + 1`` bytes of the object (so "too large" shows), or None if it is gone."""
    try:
        answer = client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in MISSING:
            return None
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # an empty object
            return b""
        raise
    return bytes(answer["Body"].read(max_bytes + 1))


def put_document(bucket: str, key: str, document: dict[str, Any]) -> None:
    client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(document, indent=2).encode(),
        ContentType="application/json", CacheControl="no-cache",
    )


def delete_document(bucket: str, key: str) -> None:
    client("s3").delete_object(Bucket=bucket, Key=key)  # no error if it does not exist
