"""Streaming into S3 (moto): one PutObject or multipart, checksums, and nothing visible after a failed copy."""

from __future__ import annotations

import base64
import hashlib
import os
import types
import zlib

import boto3
import pytest
from moto import mock_aws

from reelhook.adapters import aws, s3_stream
from reelhook.adapters.s3_stream import (
    PART_SIZE,
    SINGLE_PUT_MAX,
    ChecksumMismatch,
    TooLarge,
    Truncated,
    stream_to_s3,
)

PART = 5 * 1024 * 1024  # S3's minimum part size


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="videos")
        yield client


@pytest.fixture
def calls(s3):
    """The S3 operations called through the fixture's client, in order."""
    seen: list[str] = []
    s3.meta.events.register("before-call.s3", lambda model, **_: seen.append(model.name))
    return seen


@pytest.fixture
def hashed(monkeypatch):
    """How many bytes s3_stream feeds to SHA-256, all hashers together."""
    fed = [0]

    class Counting:
        def __init__(self, data: bytes = b"") -> None:
            self._inner = hashlib.sha256()
            self.update(data)

        def update(self, data: bytes) -> None:
            fed[0] += len(data)
            self._inner.update(data)

        def digest(self) -> bytes:
            return self._inner.digest()

        def hexdigest(self) -> str:
            return self._inner.hexdigest()

    monkeypatch.setattr(s3_stream, "hashlib", types.SimpleNamespace(sha256=Counting))
    return fed


UPLOADS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"}


def uploads(calls):
    return [c for c in calls if c in UPLOADS]


def chunks(data: bytes, size: int = 700_000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def objects(s3):
    return [o["Key"] for o in s3.list_objects_v2(Bucket="videos").get("Contents", [])]


def pending_uploads(s3):
    return s3.list_multipart_uploads(Bucket="videos").get("Uploads", [])


@pytest.mark.parametrize("single_put_max", [0, SINGLE_PUT_MAX], ids=["multipart", "single-put-up-to-16MiB"])
@pytest.mark.parametrize("known", [True, False], ids=["length-known", "length-unknown"])
@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 3 * PART + 12345])
def test_bytes_arrive_whole_with_their_sha256(s3, size, known, single_put_max):
    data = os.urandom(size)
    stored = stream_to_s3(chunks(data), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=10 * PART, expected_bytes=size if known else None, part_size=PART,
                          max_in_flight=2, single_put_max=single_put_max, s3=s3)
    body = s3.get_object(Bucket="videos", Key="k.mp4")
    assert body["Body"].read() == data
    assert body["ContentType"] == "video/mp4"
    assert (stored.bytes, stored.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert pending_uploads(s3) == []


def test_a_source_that_breaks_midway_leaves_no_object_and_no_parts(s3):
    data = os.urandom(3 * PART)

    def breaking():
        yield from chunks(data[: 2 * PART + 10])
        raise ConnectionError("peer closed connection")

    with pytest.raises(ConnectionError):
        stream_to_s3(breaking(), bucket="videos", key="k.mp4", content_type="video/mp4", max_bytes=10 * PART,
                     part_size=PART, s3=s3)
    assert objects(s3) == [] and pending_uploads(s3) == []


def test_a_short_body_is_never_stored(s3):
    with pytest.raises(Truncated):
        stream_to_s3(chunks(os.urandom(PART + 5)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=10 * PART, expected_bytes=PART + 6, part_size=PART, s3=s3)
    assert objects(s3) == [] and pending_uploads(s3) == []


def test_size_cap(s3):
    with pytest.raises(TooLarge):
        stream_to_s3(chunks(os.urandom(2 * PART)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=PART, part_size=PART, s3=s3)
    assert objects(s3) == [] and pending_uploads(s3) == []


def test_a_retry_overwrites_the_same_key(s3):
    first, second = os.urandom(PART + 1), os.urandom(PART + 2)
    for data in (first, second):
        stream_to_s3(chunks(data), bucket="videos", key="k.mp4", content_type="video/mp4", max_bytes=10 * PART,
                     part_size=PART, s3=s3)
    assert objects(s3) == ["k.mp4"]
    assert s3.get_object(Bucket="videos", Key="k.mp4")["Body"].read() == second


def test_a_known_length_up_to_the_threshold_is_one_put_object_hashed_once(s3, calls, hashed):
    size = PART_SIZE + PART_SIZE // 4  # more than a part: once a multipart upload of a part and a quarter
    assert size <= SINGLE_PUT_MAX
    data = os.urandom(size)
    puts: list[dict] = []
    s3.meta.events.register("before-call.s3.PutObject", lambda params, **_: puts.append(params["headers"]))
    stored = stream_to_s3(chunks(data, 1024 * 1024), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=64 * 1024 * 1024, expected_bytes=size, s3=s3)
    assert uploads(calls) == ["PutObject"]
    assert hashed[0] == size  # every byte through SHA-256 once
    digest = hashlib.sha256(data)
    assert (stored.bytes, stored.sha256, stored.content_type) == (size, digest.hexdigest(), "video/mp4")
    assert stored.s3_uri == "s3://videos/k.mp4"
    assert puts[0]["x-amz-checksum-sha256"] == base64.b64encode(digest.digest()).decode()
    got = s3.get_object(Bucket="videos", Key="k.mp4")
    assert got["Body"].read() == data and got["ContentType"] == "video/mp4"
    assert pending_uploads(s3) == []


def test_an_unknown_length_smaller_than_a_part_is_one_put_object_hashed_once(s3, calls, hashed):
    data = os.urandom(PART - 3)
    stored = stream_to_s3(chunks(data), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=10 * PART, part_size=PART, s3=s3)
    assert uploads(calls) == ["PutObject"]
    assert hashed[0] == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert s3.get_object(Bucket="videos", Key="k.mp4")["Body"].read() == data


def test_above_the_threshold_goes_multipart_hashed_once(s3, calls, hashed):
    size = 2 * PART + 1
    data = os.urandom(size)
    stored = stream_to_s3(chunks(data), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=10 * PART, expected_bytes=size, part_size=PART, single_put_max=2 * PART, s3=s3)
    assert uploads(calls) == ["CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart",
                              "CompleteMultipartUpload"]
    assert hashed[0] == size  # the parts carry CRC32s: SHA-256 only for the whole object
    assert (stored.bytes, stored.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert s3.get_object(Bucket="videos", Key="k.mp4")["Body"].read() == data
    assert pending_uploads(s3) == []


def test_the_default_threshold_sends_a_larger_known_length_multipart(s3, calls):
    size = SINGLE_PUT_MAX + 1
    stored = stream_to_s3(chunks(os.urandom(size), 1024 * 1024), bucket="videos", key="k.mp4",
                          content_type="video/mp4", max_bytes=64 * 1024 * 1024, expected_bytes=size, s3=s3)
    assert uploads(calls)[0] == "CreateMultipartUpload" and "PutObject" not in calls
    assert uploads(calls).count("UploadPart") == -(-size // PART_SIZE)
    assert stored.bytes == size and objects(s3) == ["k.mp4"]


@pytest.mark.parametrize("sent", [0, 1, PART - 1], ids=["empty", "one-byte", "one-short"])
def test_a_short_or_empty_body_within_the_threshold_stores_nothing(s3, calls, sent):
    with pytest.raises(Truncated):
        stream_to_s3(chunks(os.urandom(sent)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=10 * PART, expected_bytes=PART, part_size=PART // 2, s3=s3)
    assert uploads(calls) == []  # no upload even begun
    assert objects(s3) == [] and pending_uploads(s3) == []


def test_a_body_longer_than_announced_stores_nothing(s3, calls):
    with pytest.raises(Truncated):
        stream_to_s3(chunks(os.urandom(PART + 1)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=10 * PART, expected_bytes=PART, s3=s3)
    assert uploads(calls) == [] and objects(s3) == []


def test_a_composite_checksum_other_than_the_parts_is_an_error(s3, calls):
    def tamper(parsed, **_):
        parsed["ChecksumCRC32"] = "AAAAAA==-2"

    s3.meta.events.register("after-call.s3.CompleteMultipartUpload", tamper)
    with pytest.raises(ChecksumMismatch):
        stream_to_s3(chunks(os.urandom(PART + 1)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=10 * PART, part_size=PART, s3=s3)
    assert "AbortMultipartUpload" not in calls  # the upload had completed; the retry overwrites the key


def test_the_composite_checksum_is_the_crc32_of_the_parts_crc32s():
    # Two parts, "a" and "b": CRC32 0xE8B7BE43 and 0x71BEEFF9; S3 reports CRC32 of their 8 bytes, "-2".
    parts = [base64.b64encode(bytes.fromhex(h)).decode() for h in ("e8b7be43", "71beeff9")]
    whole = base64.b64encode(bytes.fromhex("e8b7be4371beeff9")).decode()
    reported = base64.b64encode(zlib.crc32(base64.b64decode(whole)).to_bytes(4, "big")).decode() + "-2"
    s3_stream._verify_composite(reported, parts)
    with pytest.raises(ChecksumMismatch):
        s3_stream._verify_composite(reported, parts[::-1])


def test_reelhooks_s3_client_sends_unsigned_payloads(s3, monkeypatch):
    # The checksum header is signed and S3 verifies the body against it; signing the payload would
    # SHA-256 every byte a second time.
    aws.reset_clients()
    monkeypatch.setattr(aws, "_clients", {})
    ours = aws.client("s3")
    sent: list[str] = []
    ours.meta.events.register("before-send.s3.PutObject",
                              lambda request, **_: sent.append(request.headers["X-Amz-Content-SHA256"]))
    stream_to_s3(chunks(os.urandom(1000)), bucket="videos", key="k.mp4", content_type="video/mp4",
                 max_bytes=PART, expected_bytes=1000, s3=ours)
    assert sent == [b"UNSIGNED-PAYLOAD"]
    aws.reset_clients()


class Trickle:
    """A Readable that hands out at most ``step`` bytes per readinto, as a socket does."""

    def __init__(self, data: bytes, step: int = 100_003) -> None:
        self._data = memoryview(data)
        self._step = step

    def readinto(self, buffer):
        n = min(len(buffer), self._step, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("single_put_max", [0, SINGLE_PUT_MAX], ids=["multipart", "single-put-up-to-16MiB"])
@pytest.mark.parametrize("known", [True, False], ids=["length-known", "length-unknown"])
@pytest.mark.parametrize("size", [0, PART - 1, PART, 2 * PART + 12345])
def test_a_readable_source_is_read_into_parts_whole_and_hashed_once(s3, calls, hashed, size, known, single_put_max):
    data = os.urandom(size)
    stored = stream_to_s3(Trickle(data), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=10 * PART, expected_bytes=size if known else None, part_size=PART,
                          max_in_flight=2, single_put_max=single_put_max, s3=s3)
    assert s3.get_object(Bucket="videos", Key="k.mp4")["Body"].read() == data
    assert (stored.bytes, stored.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert hashed[0] == size
    if size > PART and (single_put_max == 0 or not known):
        assert uploads(calls).count("UploadPart") == -(-size // PART)
    assert pending_uploads(s3) == []


@pytest.mark.parametrize("single_put_max", [0, SINGLE_PUT_MAX], ids=["multipart", "single-put"])
@pytest.mark.parametrize("sent", [PART // 2, 2 * PART + 1, 2 * PART + 3], ids=["short", "one-short", "one-long"])
def test_a_readable_source_of_another_length_than_announced_stores_nothing(s3, calls, sent, single_put_max):
    with pytest.raises(Truncated):
        stream_to_s3(Trickle(os.urandom(sent)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=10 * PART, expected_bytes=2 * PART + 2, part_size=PART,
                     single_put_max=single_put_max, s3=s3)
    assert "PutObject" not in calls and "CompleteMultipartUpload" not in calls
    assert objects(s3) == [] and pending_uploads(s3) == []


def test_a_readable_source_over_the_cap_is_too_large(s3):
    with pytest.raises(TooLarge):
        stream_to_s3(Trickle(os.urandom(2 * PART + 1)), bucket="videos", key="k.mp4", content_type="video/mp4",
                     max_bytes=2 * PART, part_size=PART, s3=s3)
    assert objects(s3) == [] and pending_uploads(s3) == []
