"""``s3://`` inputs: checked against the model's limits, then handed over as presigned URLs.

The job stores the ``s3://`` URI; a presigned HTTPS URL is made only when the provider is
called, so the stored job never holds a credential-bearing link.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client
from reelhook.config import settings
from reelhook.spec import INPUT_FIELDS, LIST_INPUTS, FieldError, ModelSpec, NormalizedRequest

PRESIGN_SECONDS = 6 * 3600
DEFAULT_TYPES = {"reference_images": "image/", "first_frame": "image/", "last_frame": "image/",
                 "reference_videos": "video/", "source_video": "video/"}


def _media(req: NormalizedRequest) -> Iterator[tuple[str, str, str]]:
    """``(field path, input name, url)`` for every media URL in the request, voices included."""
    for name in INPUT_FIELDS:
        value: Any = req.get(name)
        if not value:
            continue
        if name in LIST_INPUTS:
            for index, ref in enumerate(value):
                yield f"{name}[{index}].url", name, ref["url"]
                if ref.get("voice_url"):
                    yield f"{name}[{index}].voice_url", "voice", ref["voice_url"]
        else:
            yield name, name, value


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


INPUT_PREFIX = "inputs/"  # where s3:// inputs live in the stack's own bucket (template: S3Inputs)


def input_allowed(bucket: str, key: str) -> bool:
    conf = settings()
    return (bucket == conf.video_bucket and key.startswith(INPUT_PREFIX)) or bucket in conf.input_buckets


def allowed_locations() -> list[str]:
    conf = settings()
    return [f"s3://{conf.video_bucket}/{INPUT_PREFIX}*", *(f"s3://{b}/*" for b in conf.input_buckets)]


def check_s3_inputs(spec: ModelSpec, req: NormalizedRequest) -> list[FieldError]:
    """HEAD every ``s3://`` input: it must exist in an allowed bucket and fit the model's limits."""
    errors: list[FieldError] = []
    for path, name, url in _media(req):
        if not url.startswith("s3://"):
            continue
        bucket, key = split_s3(url)
        if not input_allowed(bucket, key):
            errors.append(FieldError(path, "names an S3 location reelhook may not read", allowed_locations()))
            continue
        try:
            head = client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            missing = code in {"404", "NoSuchKey", "NotFound"}
            errors.append(FieldError(path, "does not exist" if missing else f"cannot be read ({code})"))
            continue
        rule = spec.input_rule(name) if name != "voice" else None
        size, content_type = int(head.get("ContentLength", 0)), str(head.get("ContentType", "")).lower()
        if rule is not None and rule.max_bytes is not None and size > rule.max_bytes:
            errors.append(FieldError(path, f"is {size} bytes; {spec.id} takes at most {rule.max_bytes}",
                                     {"max_bytes": rule.max_bytes}))
        allowed_types = rule.content_types if rule is not None and rule.content_types else None
        if allowed_types is not None:
            if content_type not in allowed_types:
                errors.append(FieldError(path, f"has content type {content_type or 'unknown'!r}",
                                         list(allowed_types)))
        else:
            expected = "audio/" if name == "voice" else DEFAULT_TYPES[name]
            if not content_type.startswith(expected):
                errors.append(FieldError(path, f"has content type {content_type or 'unknown'!r}, not {expected}*",
                                         [f"{expected}*"]))
    return errors


def presigned_request(req: NormalizedRequest) -> NormalizedRequest:
    """A copy of the request with every ``s3://`` input replaced by a presigned HTTPS URL."""
    if not any(url.startswith("s3://") for _, _, url in _media(req)):
        return req
    out: Any = copy.deepcopy(req)

    def sign(url: str) -> str:
        if not url.startswith("s3://"):
            return url
        bucket, key = split_s3(url)
        return str(client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS))

    for name in INPUT_FIELDS:
        if name not in out:
            continue
        if name in LIST_INPUTS:
            for ref in out[name]:
                ref["url"] = sign(ref["url"])
                if ref.get("voice_url"):
                    ref["voice_url"] = sign(ref["voice_url"])
        else:
            out[name] = sign(out[name])
    return out
