"""Where inbox manifests and their outbox documents live in the video bucket.

Kept apart from ``services.inbox`` so the notifier can name outbox documents without
loading the API's validation code.
"""

from __future__ import annotations

INBOX_PREFIX = "inbox/"
OUTBOX_PREFIX = "outbox/"
STATUS_SUFFIX = ".status.json"
ERROR_SUFFIX = ".error.json"
ORIGIN_KIND = "s3_inbox"  # job["origin"]["kind"] of jobs made from a manifest


def outbox_key(inbox_key: str, suffix: str) -> str:
    """``inbox/a/b.json`` -> ``outbox/a/b.json<suffix>``."""
    return OUTBOX_PREFIX + inbox_key.removeprefix(INBOX_PREFIX) + suffix
