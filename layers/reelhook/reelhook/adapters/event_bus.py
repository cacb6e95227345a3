"""The job event bus (EventBridge): one entry per terminal job transition."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from reelhook.adapters.aws import client
from reelhook.records import record

logger = logging.getLogger(__name__)
SOURCE = "reelhook"
MAX_ENTRIES_PER_CALL = 10  # PutEvents' limit
# PutEvents refuses entries above 256 KiB; past this the detail drops its event history.
MAX_DETAIL_BYTES = 200 * 1024


@record
class JobEvent:
    detail_type: str
    detail: dict[str, Any]


def bus_name() -> str:
    return os.environ.get("EVENT_BUS_NAME", "").strip()


def _detail(detail: dict[str, Any]) -> str:
    text = json.dumps(detail, separators=(",", ":"))
    if len(text.encode()) > MAX_DETAIL_BYTES:
        text = json.dumps({k: v for k, v in detail.items() if k != "events"}, separators=(",", ":"))
    return text


def put_job_events(events: Sequence[JobEvent]) -> list[int]:
    """Put ``events`` on the bus, ten per call; returns the indexes of the entries that were not put."""
    failed: list[int] = []
    for start in range(0, len(events), MAX_ENTRIES_PER_CALL):
        chunk = events[start:start + MAX_ENTRIES_PER_CALL]
        entries = [{"Source": SOURCE, "DetailType": e.detail_type, "Detail": _detail(e.detail),
                    "EventBusName": bus_name()} for e in chunk]
        try:
            answer = client("events").put_events(Entries=entries)
        except (BotoCoreError, ClientError):
            logger.exception("PutEvents failed")
            failed += range(start, start + len(chunk))
            continue
        if answer.get("FailedEntryCount"):
            # Results come back in request order; a failed one carries an ErrorCode.
            failed += [start + i for i, result in enumerate(answer["Entries"]) if result.get("ErrorCode")]
    return failed
