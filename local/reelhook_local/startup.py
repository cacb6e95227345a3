"""What the local stack is doing while it starts: one line per step, with how long it took.

In a terminal the step under way is a spinner and each finished step a line with a tick;
piped, each finished step is one plain line. ``LocalStack`` reports its steps to a
``StartSteps`` given to it (``LocalStack(options, steps=...)``).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

NAME_WIDTH = 56  # the longest step name, so the seconds line up


class StartSteps:
    """Prints the stack's start steps as they happen on ``console``."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.done: list[tuple[str, float]] = []
        self._status: Any = None
        self._began = time.monotonic()

    def begin(self, step: str) -> None:
        if self.console.is_terminal:
            if self._status is None:
                self._status = self.console.status(f"{step}…")
                self._status.start()
            else:
                self._status.update(f"{step}…")

    def end(self, step: str, seconds: float) -> None:
        self.done.append((step, seconds))
        mark = "[green]✓[/] " if self.console.is_terminal else ""
        self.console.print(f"  {mark}{step:<{NAME_WIDTH}} {seconds:5.1f} s", soft_wrap=True, highlight=False)

    def close(self) -> float:
        """Stop the spinner; returns the seconds since the first step began."""
        if self._status is not None:
            self._status.stop()
            self._status = None
        return time.monotonic() - self._began
