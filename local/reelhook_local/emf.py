"""Powertools' EMF metric lines, kept off the terminal of a local stack.

On Lambda a function prints each metric set as one JSON line (``{"_aws": ...}``) and CloudWatch
Logs turns it into metrics. Locally the handlers run in the stack's own process, so those lines
would land among the tool's output (``make chaos``, ``make serve``, ``make demo``). While such
a stack runs (``StackOptions.metrics_file``), ``MetricLines`` stands in for ``sys.stdout``:
metric lines are counted and appended to the file (``.reelhook/metrics.jsonl``); everything else
(log lines, a tool's own output) passes through unchanged. ``make bench`` sends all of stdout to
its own meter (bench.common.METER), which counts the metric names.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import IO, Any

EMF_PREFIX = '{"_aws"'
METRICS_FILE = Path(".reelhook/metrics.jsonl")


class MetricLines:
    """A stdout that diverts EMF metric lines and passes the rest on to ``stream``."""

    def __init__(self, stream: IO[str], path: Path | None = None) -> None:
        self.stream = stream
        self.path = path
        self.lines = 0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        # print() writes the line, then "\n" in a second call: that one is swallowed too.
        self._after_metric = threading.local()

    def write(self, text: str) -> int:
        if text == "\n" and getattr(self._after_metric, "pending", False):
            self._after_metric.pending = False
            return len(text)
        self._after_metric.pending = False
        if not text.startswith(EMF_PREFIX):
            return self.stream.write(text)
        with self._lock:
            self.lines += 1
            if self.path is not None:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                self._file.write(text if text.endswith("\n") else text + "\n")
                self._file.flush()
        self._after_metric.pending = not text.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close_file(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding...: the real stream's
        return getattr(self.stream, name)


def divert(path: Path | None = None) -> MetricLines:
    """Put a ``MetricLines`` in front of the current ``sys.stdout``; ``restore`` takes it away."""
    lines = MetricLines(sys.stdout, path)
    sys.stdout = lines  # type: ignore[assignment]
    return lines


def restore(lines: MetricLines) -> None:
    """Take ``lines`` away again, if nothing has replaced ``sys.stdout`` since."""
    lines.close_file()
    if sys.stdout is lines:
        sys.stdout = lines.stream  # type: ignore[assignment]
