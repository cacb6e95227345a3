"""Quoting the provider documents in tests: each quote is checked against the document itself.

The documents are not part of the repository (they are the providers' own pages). When they
are on this machine (``REELHOOK_PROVIDER_DOCS``, by default the folder they are kept in on the
development machine), every quote a test rests on must appear in them word for word, up to
whitespace; elsewhere the quote still documents the test.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

DOCS = Path(os.environ.get("REELHOOK_PROVIDER_DOCS", "/work/shared/providers"))
VEO = "freepik-veo-3-1-reference-to-video.txt"
WAN = "freepik-wan-2-7-reference-to-video.txt"
KLING = "freepik-kling-3-omni-pro-video-reference.txt"
SPEC = "freepik-openapi-reference-to-video.yaml"
UNIALL = "uniall-veo-3-1-video-generations.txt"
AIHUBMAX = "aihubmax-veo-3-1-reference-to-video.txt"
README = "README.md"


@cache
def _text(document: str) -> str | None:
    path = DOCS / document
    return " ".join(path.read_text(encoding="utf-8").split()) if path.is_file() else None


def says(document: str, words: str) -> str:
    """``words``, after checking that ``document`` says them (when the document is here)."""
    text = _text(document)
    if text is not None:
        assert " ".join(words.split()) in text, f"{document} does not say {words!r}"
    return words


def does_not_say(document: str, words: str) -> None:
    text = _text(document)
    if text is not None:
        assert " ".join(words.split()) not in text, f"{document} says {words!r}"
