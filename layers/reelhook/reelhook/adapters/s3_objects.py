"""Reading back and tidying objects the transfer stored: ranged reads, posters, deletes.

``RangedObject`` is a seekable, read-only file over one S3 object, fetched in ``block_size``
ranged GETs with a few blocks cached: a media demuxer reads an MP4's head, seeks to a
``moov`` box at the end and back to the first keyframe, so inspecting even a 1 GiB video
costs a handful of small GETs and at most ``block_size * max_blocks`` bytes of memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
from collections import OrderedDict
from typing import Any

from botocore.exceptions import ClientError

from reelhook.adapters.aws import client

BLOCK_SIZE = 1024 * 1024
MAX_BLOCKS = 4


class RangedObject(io.RawIOBase):
    """``bucket``/``key`` (``size`` bytes, known from the upload) as a seekable binary file."""

    def __init__(self, bucket: str, key: str, size: int, *, block_size: int = BLOCK_SIZE,
                 max_blocks: int = MAX_BLOCKS, s3: Any = None, version_id: str | None = None) -> None:
        super().__init__()
        self.bucket, self.key, self.size = bucket, key, size
        # Read this version only: another attempt may write the key meanwhile.
        self._version = {"VersionId": version_id} if version_id else {}
        self._block_size, self._max_blocks = block_size, max_blocks
        self._s3 = s3 or client("s3")
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._position = 0
        self.requests = 0  # ranged GETs made, for tests and logs

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def _block(self, number: int) -> bytes:
        found = self._blocks.get(number)
        if found is not None:
            self._blocks.move_to_end(number)
            return found
        start = number * self._block_size
        end = min(self.size, start + self._block_size) - 1
        answer = self._s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={start}-{end}", **self._version)
        data: bytes = answer["Body"].read()
        self.requests += 1
        self._blocks[number] = data
        while len(self._blocks) > self._max_blocks:
            self._blocks.popitem(last=False)
        return data

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        got = 0
        while got < len(view) and self._position < self.size:
            number, offset = divmod(self._position, self._block_size)
            block = self._block(number)
            piece = block[offset: offset + len(view) - got]
            if not piece:
                break
            view[got: got + len(piece)] = piece
            got += len(piece)
            self._position += len(piece)
        return got


def put_image(bucket: str, key: str, body: bytes, content_type: str = "image/jpeg") -> str | None:
    """Store a small image; its version id where the bucket keeps versions."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    answer = client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type,
                                     ChecksumSHA256=digest)
    return answer.get("VersionId")


def delete_quietly(bucket: str, key: str, version_id: str | None = None) -> None:
    """Remove an object that must not stay (an empty or non-video result).

    With ``version_id`` exactly that version goes, so the key falls back to the version before
    it (a concurrent attempt's good copy); without, the key's current object goes.
    """
    # A failed delete is harmless: the retry overwrites the key, and a failed job names no output.
    with contextlib.suppress(ClientError):
        client("s3").delete_object(Bucket=bucket, Key=key, **({"VersionId": version_id} if version_id else {}))
