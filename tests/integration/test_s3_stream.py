"""Streaming into S3 (moto): multipart, checksums, and nothing visible after a failed copy."""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
from moto import mock_aws

from reelhook.adapters.s3_stream import TooLarge, Truncated, stream_to_s3

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


def chunks(data: bytes, size: int = 700_000):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def objects(s3):
    return [o["Key"] for o in s3.list_objects_v2(Bucket="videos").get("Contents", [])]


def pending_uploads(s3):
    return s3.list_multipart_uploads(Bucket="videos").get("Uploads", [])


@pytest.mark.parametrize("size", [0, 1, PART - 1, PART, PART + 1, 3 * PART + 12345])
def test_bytes_arrive_whole_with_their_sha256(s3, size):
    data = os.urandom(size)
    stored = stream_to_s3(chunks(data), bucket="videos", key="k.mp4", content_type="video/mp4",
                          max_bytes=10 * PART, expected_bytes=size, part_size=PART, max_in_flight=2, s3=s3)
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
