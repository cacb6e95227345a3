"""How the CLI authenticates: nothing, a bearer token (JWT authorizer) or SigV4 (IAM)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Generator
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

AuthMode = Literal["none", "iam", "jwt"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "iam", "jwt")
SERVICE = "execute-api"
# https://<api id>.execute-api.<region>.amazonaws.com
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
# Besides host and the x-amz-* headers SigV4 adds, sign only these: hop-by-hop and
# client-specific headers (connection, user-agent, accept-encoding...) may be changed on
# the way, and a signed header that changes breaks the signature.
_SIGNED = ("content-type", "idempotency-key")


class AuthError(Exception):
    """Authentication could not be set up (no credentials, no region, no token)."""


def default_auth_mode(api_url: str) -> AuthMode:
    """IAM for an AWS-hosted API (``*.amazonaws.com``), otherwise none."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "iam" if host.endswith(".amazonaws.com") else "none"


def region_from_url(api_url: str) -> str | None:
    match = _EXECUTE_API_HOST.match((urlsplit(api_url).hostname or "").lower())
    return match["region"] if match else None


def resolve_region(api_url: str, region: str | None) -> str:
    """--region, else the execute-api host's region, else the AWS environment/config."""
    if region:
        return region
    found = region_from_url(api_url) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        import boto3

        found = boto3.session.Session().region_name
    if not found:
        raise AuthError(f"no AWS region for signing requests to {api_url}: pass --region or set AWS_REGION")
    return found


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` for an HTTP API with a JWT authorizer."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class SigV4Auth(httpx.Auth):
    """Signs each request (body included) with AWS Signature Version 4 for ``execute-api``.

    ``credentials`` is anything with ``access_key``, ``secret_key`` and ``token`` (botocore's
    ``Credentials`` or ``ReadOnlyCredentials``); by default boto3's credential chain is used,
    looked up on the first request and refreshed as botocore sees fit.
    """

    requires_request_body = True

    def __init__(self, region: str, credentials: Any = None, *, service: str = SERVICE) -> None:
        self.region = region
        self.service = service
        self._credentials = credentials

    def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            import boto3

            self._credentials = boto3.session.Session().get_credentials()
            if self._credentials is None:
                raise AuthError(
                    "no AWS credentials found for --auth iam "
                    "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`)"
                )
        get_frozen = getattr(self._credentials, "get_frozen_credentials", None)
        return get_frozen() if get_frozen is not None else self._credentials

    def sign(self, request: httpx.Request) -> None:
        from botocore.auth import SigV4Auth as BotoSigV4Auth
        from botocore.awsrequest import AWSRequest

        body = request.content
        headers = {"host": request.headers["host"], "x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
        headers |= {name: request.headers[name] for name in _SIGNED if name in request.headers}
        aws_request = AWSRequest(method=request.method, url=str(request.url), data=body, headers=headers)
        BotoSigV4Auth(self._frozen_credentials(), self.service, self.region).add_auth(aws_request)
        for name, value in aws_request.headers.items():
            if name.lower() == "authorization" or name.lower().startswith("x-amz-"):
                request.headers[name] = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request


def make_auth(mode: AuthMode, api_url: str, *, token: str | None, region: str | None) -> httpx.Auth | None:
    if mode == "none":
        return None
    if mode == "jwt":
        if not token:
            raise AuthError("--auth jwt needs a token: pass --token or set REELHOOK_TOKEN")
        return BearerAuth(token)
    return SigV4Auth(resolve_region(api_url, region))
