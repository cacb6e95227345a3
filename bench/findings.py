"""The "what it means" section of BENCHMARKS.md, written from the figures."""

from __future__ import annotations

from typing import Any


def render(results: dict[str, Any]) -> str:
    return ""
