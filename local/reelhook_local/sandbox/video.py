"""The result file served for a task: the configured MP4, optionally made unique and padded.

A distinct or padded file is the configured video followed by one ISO-BMFF ``free`` box
(which players skip), holding a line naming the task and then zero bytes. The box payload is
produced in chunks, so a 1 GiB file is streamed without ever being held in memory.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK_SIZE = 1 << 20
_ZEROS = bytes(CHUNK_SIZE)
_SMALL_BOX_MAX = 0xFFFFFFFF  # a box larger than this needs the 64-bit "largesize" header


def free_box_header(box_size: int) -> bytes:
    """The header of a ``free`` box of ``box_size`` bytes in all (header included)."""
    if box_size <= _SMALL_BOX_MAX:
        return struct.pack(">I4s", box_size, b"free")
    return struct.pack(">I4sQ", 1, b"free", box_size)


@dataclass(frozen=True)
class TaskVideo:
    """The bytes served for one task, generated on demand.

    ``label`` (e.g. the task id) is written inside a trailing ``free`` box; ``target_size``
    pads that box with zeros so the whole file has at least that many bytes. With neither,
    the file is ``base`` unchanged.
    """

    base: bytes
    label: str | None = None
    target_size: int | None = None

    @property
    def has_box(self) -> bool:
        return self.label is not None or self.target_size is not None

    @property
    def _box_text(self) -> bytes:
        text = f"reelhook-sandbox task {self.label}\n" if self.label is not None else "reelhook-sandbox padding\n"
        return text.encode()

    @property
    def _head(self) -> bytes:
        """Everything but the zero padding: the base video, the box header and its text."""
        if not self.has_box:
            return self.base
        text = self._box_text
        box_size = self._box_size(len(text))
        return self.base + free_box_header(box_size) + text

    def _box_size(self, text_length: int) -> int:
        minimal = 8 + text_length
        if self.target_size is None:
            return minimal
        wanted = self.target_size - len(self.base)
        if wanted <= minimal:
            return minimal
        if wanted > _SMALL_BOX_MAX:
            return max(wanted, 16 + text_length)  # the header grows to 16 bytes
        return wanted

    @property
    def size(self) -> int:
        if not self.has_box:
            return len(self.base)
        return len(self.base) + self._box_size(len(self._box_text))

    def chunks(self, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The bytes ``start..end`` (inclusive; ``end`` defaults to the last byte), in chunks."""
        size = self.size
        end = size - 1 if end is None else min(end, size - 1)
        head = self._head
        position = start
        while position <= end:
            if position < len(head):
                stop = min(end + 1, len(head), position + chunk_size)
                yield head[position:stop]
            else:
                stop = min(end + 1, position + chunk_size, position + len(_ZEROS))
                yield _ZEROS[: stop - position]
            position = stop

    def read(self) -> bytes:
        """The whole file in memory (fine for small files; stream big ones with ``chunks``)."""
        return b"".join(self.chunks())

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks():
            digest.update(chunk)
        return digest.hexdigest()
