"""Authentication for reelhook's API: nothing, a bearer token (JWT authorizer) or SigV4 (IAM).

SigV4 needs botocore (``pip install 'reelhook-client[iam]'``), imported on first use only.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Generator
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from reelhook_client.errors import AuthError

AuthMode = Literal["none", "iam", "jwt"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "iam", "jwt")
SERVICE = "execute-api"
# https://<api id>.execute-api.<region>.amazonaws.com
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
# Besides host and the x-amz-* headers SigV4 adds, sign only these: hop-by-hop and
# client-specific headers (connection, user-agent, accept-encoding...) may be changed on
# the way, and a signed header that changes breaks the signature.
_SIGNED = ("content-type", "idempotency-key")

Token = str | Callable[[], str]


def default_auth_mode(api_url: str) -> AuthMode:
    """IAM for an AWS-hosted API (``*.amazonaws.com``), otherwise none."""
    host = (urlsplit(api_url).hostname or "").lower()
    return "iam" if host.endswith(".amazonaws.com") else "none"


def region_from_url(api_url: str) -> str | None:
    match = _EXECUTE_API_HOST.match((urlsplit(api_url).hostname or "").lower())
    return match["region"] if match else None


def _botocore_session() -> Any:
    try:
        import botocore.session
    except ImportError:
        raise AuthError("IAM auth needs botocore: pip install 'reelhook-client[iam]'") from None
    return botocore.session.get_session()


def resolve_region(api_url: str, region: str | None) -> str:
    """``region``, else the execute-api host's region, else the AWS environment and config."""
    if region:
        return region
    found = region_from_url(api_url) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not found:
        found = _botocore_session().get_config_variable("region")
    if not found:
        raise AuthError(f"no AWS region for signing requests to {api_url}: pass region= (--region) or set AWS_REGION")
    return str(found)


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; a callable token is asked on every request, so it may refresh."""

    def __init__(self, token: Token) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token() if callable(self.token) else self.token
        if not token:
            raise AuthError("the token callable returned no token")
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class SigV4Auth(httpx.Auth):
    """Signs each request, its exact body bytes included, with AWS Signature Version 4.

    ``credentials`` is anything with ``access_key``, ``secret_key`` and ``token`` (botocore's
    ``Credentials`` or ``ReadOnlyCredentials``); by default botocore's credential chain is
    used, looked up on the first request and refreshed as botocore sees fit.
    """

    requires_request_body = True

    def __init__(self, region: str, credentials: Any = None, *, service: str = SERVICE) -> None:
        self.region = region
        self.service = service
        self._credentials = credentials

    def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            self._credentials = _botocore_session().get_credentials()
            if self._credentials is None:
                raise AuthError(
                    "no AWS credentials found for IAM auth "
                    "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`)"
                )
        get_frozen = getattr(self._credentials, "get_frozen_credentials", None)
        return get_frozen() if get_frozen is not None else self._credentials

    def sign(self, request: httpx.Request) -> None:
        try:
            from botocore.auth import SigV4Auth as BotoSigV4Auth
            from botocore.awsrequest import AWSRequest
        except ImportError:
            raise AuthError("IAM auth needs botocore: pip install 'reelhook-client[iam]'") from None

        body = request.content  # the bytes httpx will send
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


def make_auth(mode: AuthMode | httpx.Auth | None, api_url: str, *, token: Token | None,
              region: str | None) -> httpx.Auth | None:
    """The httpx auth for ``mode``; raises ``AuthError`` for what cannot work (jwt without a token)."""
    if isinstance(mode, httpx.Auth):
        return mode
    if mode is None or mode == "none":
        return None
    if mode == "jwt":
        if not token:
            raise AuthError("JWT auth needs a token: pass token= (--token, REELHOOK_TOKEN)")
        return BearerAuth(token)
    if mode == "iam":
        return SigV4Auth(resolve_region(api_url, region))
    raise AuthError(f"auth must be 'iam', 'jwt' or None, not {mode!r}")
