"""Stream bytes into S3 with bounded memory: multipart parts in flight, never the whole file.

Memory is at most ``(max_in_flight + 1) * part_size``: one part filling while at most
``max_in_flight`` upload. Each part carries a SHA-256 checksum that S3 verifies; objects
smaller than one part go up in a single PUT with the full-object SHA-256. An object
appears only on CompleteMultipartUpload, so a copy that dies midway leaves nothing
visible, and the upload is aborted so no parts linger (the bucket's lifecycle rule is
the backstop for processes killed outright).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from reelhook.adapters.aws import client

PART_SIZE = 8 * 1024 * 1024
MAX_IN_FLIGHT = 4


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    bytes: int
    sha256: str
    content_type: str

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class TooLarge(Exception):
    """The source sent more bytes than allowed."""


class ChecksumMismatch(Exception):
    """S3 computed another checksum than the bytes reelhook read (the retry overwrites the key)."""


class Truncated(Exception):
    """The source ended before the length it announced; nothing is stored."""


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def stream_to_s3(
    chunks: Iterable[bytes],
    *,
    bucket: str,
    key: str,
    content_type: str,
    max_bytes: int,
    expected_bytes: int | None = None,
    part_size: int = PART_SIZE,
    max_in_flight: int = MAX_IN_FLIGHT,
    s3: Any = None,
) -> StoredObject:
    s3 = s3 or client("s3")
    digest = hashlib.sha256()
    total = 0
    upload_id: str | None = None
    parts: list[Future[dict[str, Any]]] = []
    slots = threading.BoundedSemaphore(max_in_flight)
    pool: ThreadPoolExecutor | None = None

    part_digests: list[bytes] = []

    def upload(number: int, body: bytes, digest: bytes) -> dict[str, Any]:
        try:
            answer = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body,
                ChecksumAlgorithm="SHA256", ChecksumSHA256=base64.b64encode(digest).decode(),
            )
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": answer.get("ChecksumSHA256")}
        finally:
            slots.release()

    def flush_part(body: bytes) -> None:
        nonlocal upload_id, pool
        if upload_id is None:
            upload_id = s3.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="SHA256"
            )["UploadId"]
            pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="s3part")
        slots.acquire()
        assert pool is not None
        part_digests.append(hashlib.sha256(body).digest())
        parts.append(pool.submit(upload, len(parts) + 1, body, part_digests[-1]))
        for done in [p for p in parts if p.done()]:
            done.result()  # surface a failed part early

    # Chunks wait in a list and are joined once per part: one copy of each byte on its way
    # to S3, not the two a growing bytearray and its slices would make.
    pending: list[bytes] = []
    pending_len = 0
    try:
        for chunk in chunks:
            total += len(chunk)
            if total > max_bytes:
                raise TooLarge(f"source is larger than {max_bytes} bytes")
            digest.update(chunk)
            pending.append(chunk)
            pending_len += len(chunk)
            while pending_len >= part_size:
                over = pending_len - part_size
                if over:  # split only the last chunk (at most one chunk's worth of copying)
                    last = pending.pop()
                    pending.append(last[: len(last) - over])
                    rest = [last[len(last) - over:]]
                else:
                    rest = []
                flush_part(b"".join(pending))
                pending, pending_len = rest, over
        if expected_bytes is not None and total != expected_bytes:
            raise Truncated(f"received {total} of {expected_bytes} bytes")
        if upload_id is None:
            body = b"".join(pending)
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                          ChecksumSHA256=_b64_sha256(body))
        else:
            if pending:
                flush_part(b"".join(pending))
            completed = [p.result() for p in parts]
            answer = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{k: v for k, v in part.items() if v is not None} for part in completed]},
            )
            _verify_composite(answer.get("ChecksumSHA256"), part_digests)
    except BaseException:
        if upload_id is not None:
            for part in parts:
                part.cancel()
            if pool is not None:
                pool.shutdown(wait=True)
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return StoredObject(bucket, key, total, digest.hexdigest(), content_type)


def _verify_composite(reported: str | None, part_digests: list[bytes]) -> None:
    """S3 answers a multipart upload with SHA-256 over the parts' SHA-256s; it must match ours."""
    if not reported:
        return  # S3 verified every part's checksum already; some stand-ins do not report the whole
    expected = base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode()
    if reported.split("-", 1)[0] != expected:
        raise ChecksumMismatch(f"S3 reports {reported}, the bytes read give {expected}-{len(part_digests)}")
