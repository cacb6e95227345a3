"""Who a job belongs to: the caller's identity, as API Gateway's authorizer established it.

Get, list, cancel and idempotency keys are scoped to the owner, so one caller can neither see
another's jobs nor take an Idempotency-Key another will use. Owners are stable strings:

- ``iam:<account>:user/<name>`` or ``iam:<account>:role/<name>`` for SigV4 callers. An
  assumed role's session name is dropped: each new session of the same role (a Lambda's,
  a CI job's) is the same owner.
- ``jwt:<issuer>|<subject>`` for JWT callers.
- ``inbox`` for manifests dropped into the S3 inbox: a namespace of their own.
- ``anonymous`` for a route with no authorizer (the local stack without ``--iam``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INBOX = "inbox"
ANONYMOUS = "anonymous"
_ASSUMED_ROLE = re.compile(r"^arn:aws[\w-]*:sts::(\d{12}):assumed-role/([^/]+)/.+$")
_IAM_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):(.+)$")


def caller(request_context: Mapping[str, Any] | None) -> str:
    """The owner of the request whose ``requestContext`` (HTTP API, payload 2.0) this is."""
    authorizer = (request_context or {}).get("authorizer") or {}
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping) and iam.get("userArn"):
        return iam_owner(str(iam["userArn"]))
    jwt = authorizer.get("jwt")
    claims = jwt.get("claims") if isinstance(jwt, Mapping) else None
    if isinstance(claims, Mapping) and claims.get("sub"):
        return f"jwt:{claims.get('iss', '')}|{claims['sub']}"
    return ANONYMOUS


def iam_owner(arn: str) -> str:
    assumed = _ASSUMED_ROLE.match(arn)
    if assumed:
        return f"iam:{assumed[1]}:role/{assumed[2]}"
    plain = _IAM_ARN.match(arn)
    if plain:
        return f"iam:{plain[1]}:{plain[2]}"
    return f"iam:{arn}"  # the root user's ARN and forms not seen yet: kept whole, still distinct
