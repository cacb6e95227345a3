"""Stream bytes into S3 with bounded memory, every byte hashed with SHA-256 exactly once.

The source is a ``Readable`` (``readinto``, as an ``http.client`` response, a file or a
socket has) or an iterable of chunks. A ``Readable`` fills each part's buffer directly (for
a socket: one copy from the kernel, with the GIL released while it waits); each part is then
copied once into the bytes that go up, so the buffer can be refilled while it uploads.

Two ways up, chosen before the first byte is read:

- **One PutObject** when the source announced its length (Content-Length) and it is at most
  ``SINGLE_PUT_MAX``: the body is read into one buffer, its length is checked against the
  announced one (a short or long body raises ``Truncated`` and stores nothing), and the PUT
  carries its SHA-256 (``ChecksumSHA256``) for S3 to verify. Memory is about twice the
  object (the buffer, then its bytes), so at most ``2 * SINGLE_PUT_MAX``.
- **Multipart** otherwise (large, or length unknown): parts of ``part_size`` bytes, at most
  ``max_in_flight`` uploading while the next one fills, so memory is about
  ``(max_in_flight + 2) * part_size`` (the parts in flight, the fill buffer and the part
  waiting for a slot). Each part carries a CRC32 that S3 verifies (computed in the upload
  thread; CRC32 costs a fraction of a second SHA-256 pass), and the composite S3 reports is
  checked against the parts' CRC32s. An unknown-length source that ends within the first
  part goes up in one PutObject after all, with the SHA-256 already computed. An object
  appears only on CompleteMultipartUpload, so a copy that dies midway leaves nothing
  visible, and the upload is aborted so no parts linger (the bucket's lifecycle rule is the
  backstop for processes killed outright).

``StoredObject.sha256`` is the SHA-256 of the whole object either way, computed as the
bytes stream past. The S3 client should send ``UNSIGNED-PAYLOAD`` (see
``reelhook.adapters.aws``): the body is bound to the request by the signed checksum header,
and signing the payload would hash every byte with SHA-256 a second time.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from reelhook.adapters.aws import client

PART_SIZE = 8 * 1024 * 1024
MAX_IN_FLIGHT = 4
SINGLE_PUT_MAX = 16 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    bytes: int
    sha256: str
    content_type: str
    # The version this upload made (versioned buckets): the bytes that were hashed and checked,
    # whatever a concurrent attempt writes to the key later.
    version_id: str | None = None

    @property
    def s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class TooLarge(Exception):
    """The source sent more bytes than allowed."""


class ChecksumMismatch(Exception):
    """S3 computed another checksum than the bytes reelhook read (the retry overwrites the key)."""


class Truncated(Exception):
    """The source sent another length than it announced (it ended early); nothing is stored."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64_crc32(body: bytes) -> str:
    return _b64(zlib.crc32(body).to_bytes(4, "big"))


class Readable(Protocol):
    """A byte source that fills a caller's buffer (``http.client.HTTPResponse``, files, sockets)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


class _ChunkReader:
    """An iterable of chunks read as a ``Readable``: each byte copied once, into its part."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")

    def readinto(self, buffer: memoryview, /) -> int:
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = memoryview(chunk)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _fill(source: Readable, buffer: bytearray) -> int:
    """Read into ``buffer`` until it is full or the source ends; the number of bytes read."""
    got = 0
    with memoryview(buffer) as view:  # released before the caller trims the buffer
        while got < len(view):
            n = source.readinto(view[got:])
            if not n:
                break
            got += n
    return got


def _ended(source: Readable) -> bool:
    """True if the source has nothing more (a body longer than announced does)."""
    return not source.readinto(memoryview(bytearray(1)))


def stream_to_s3(
    source: Readable | Iterable[bytes],
    *,
    bucket: str,
    key: str,
    content_type: str,
    max_bytes: int,
    expected_bytes: int | None = None,
    part_size: int = PART_SIZE,
    max_in_flight: int = MAX_IN_FLIGHT,
    single_put_max: int = SINGLE_PUT_MAX,
    s3: Any = None,
) -> StoredObject:
    """Store ``source`` (a ``Readable`` or an iterable of chunks) at ``bucket``/``key``.

    A ``Readable`` is read straight into each part's buffer (for a socket: one copy from the
    kernel, with the GIL released while it waits), so no chunk list is joined.
    """
    s3 = s3 or client("s3")
    reader: Readable = source if hasattr(source, "readinto") else _ChunkReader(source)  # type: ignore[arg-type]
    if expected_bytes is not None and expected_bytes <= min(single_put_max, max_bytes):
        return _single_put(reader, bucket=bucket, key=key, content_type=content_type, expected_bytes=expected_bytes,
                           s3=s3)
    return _multipart(reader, bucket=bucket, key=key, content_type=content_type, max_bytes=max_bytes,
                      expected_bytes=expected_bytes, part_size=part_size, max_in_flight=max_in_flight, s3=s3)


def _single_put(source: Readable, *, bucket: str, key: str, content_type: str, expected_bytes: int,
                s3: Any) -> StoredObject:
    # The announced length is read straight into one buffer, then made bytes once (the same
    # single copy the chunks' join used to make).
    buffer = bytearray(expected_bytes)
    total = _fill(source, buffer)
    if total != expected_bytes:
        raise Truncated(f"received {total} of {expected_bytes} bytes")
    if not _ended(source):
        raise Truncated(f"received more than the {expected_bytes} bytes announced")
    body = bytes(buffer)  # botocore's in-process stubs (moto) take bytes, not a bytearray
    del buffer
    digest = hashlib.sha256(body)
    answer = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                           ChecksumSHA256=_b64(digest.digest()))
    return StoredObject(bucket, key, total, digest.hexdigest(), content_type, answer.get("VersionId"))


def _multipart(source: Readable, *, bucket: str, key: str, content_type: str, max_bytes: int,
               expected_bytes: int | None, part_size: int, max_in_flight: int, s3: Any) -> StoredObject:
    digest = hashlib.sha256()
    total = 0
    upload_id: str | None = None
    version_id: str | None = None
    parts: list[Future[dict[str, Any]]] = []
    slots = threading.BoundedSemaphore(max_in_flight)
    pool: ThreadPoolExecutor | None = None
    # The whole-object SHA-256 is one sequential pass; it runs a part at a time in its own
    # thread (hashlib lets go of the GIL), overlapping the download of the next part.
    hasher: ThreadPoolExecutor | None = None
    hashing: Future[None] | None = None

    def upload(number: int, body: bytes) -> dict[str, Any]:
        try:
            checksum = _b64_crc32(body)
            answer = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ChecksumCRC32=checksum,
            )
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": checksum}
        finally:
            slots.release()

    def hash_behind(body: bytes) -> None:
        nonlocal hasher, hashing
        if hasher is None:
            hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3sha")
        if hashing is not None:
            hashing.result()  # at most one part hashing while the next one fills
        hashing = hasher.submit(digest.update, body)

    def flush_part(body: bytes) -> None:
        nonlocal upload_id, pool
        if upload_id is None:
            upload_id = s3.create_multipart_upload(
                Bucket=bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="CRC32"
            )["UploadId"]
            pool = ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="s3part")
        hash_behind(body)
        slots.acquire()
        assert pool is not None
        parts.append(pool.submit(upload, len(parts) + 1, body))
        for done in [p for p in parts if p.done()]:
            done.result()  # surface a failed part early

    # One fill buffer, reused: each part is read straight into it, then copied once into the
    # bytes that go up (botocore's in-process stubs take bytes, and the buffer is refilled
    # while the part uploads).
    buffer = bytearray(part_size)
    try:
        while True:
            got = _fill(source, buffer)
            total += got
            if total > max_bytes:
                raise TooLarge(f"source is larger than {max_bytes} bytes")
            if expected_bytes is not None and total > expected_bytes:
                raise Truncated(f"received more than the {expected_bytes} bytes announced")
            body = bytes(buffer) if got == part_size else bytes(memoryview(buffer)[:got])
            if got < part_size:
                break  # the source ended
            flush_part(body)
        del buffer
        if expected_bytes is not None and total != expected_bytes:
            raise Truncated(f"received {total} of {expected_bytes} bytes")
        if upload_id is None:
            digest.update(body)
            answer = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                                   ChecksumSHA256=_b64(digest.digest()))
            version_id = answer.get("VersionId")
        else:
            if body:
                flush_part(body)
            del body
            assert hashing is not None
            hashing.result()
            completed = [p.result() for p in parts]
            answer = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed},
            )
            upload_id = None  # completed: nothing left to abort
            version_id = answer.get("VersionId")
            _verify_composite(answer.get("ChecksumCRC32"), [part["ChecksumCRC32"] for part in completed])
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
        if hasher is not None:
            hasher.shutdown(wait=True)
    return StoredObject(bucket, key, total, digest.hexdigest(), content_type, version_id)


def _verify_composite(reported: str | None, part_checksums: list[str]) -> None:
    """S3 answers a multipart upload with the CRC32 of the parts' CRC32s; it must match ours."""
    if not reported:
        return  # S3 verified every part's checksum already; some stand-ins do not report the whole
    expected = _b64_crc32(b"".join(base64.b64decode(c) for c in part_checksums))
    if reported.split("-", 1)[0] != expected:
        raise ChecksumMismatch(f"S3 reports {reported}, the bytes read give {expected}-{len(part_checksums)}")
