"""Provider rate limits, enforced the way a provider would: sliding windows per provider.

A request that would take a window past its maximum is refused with 429 and a
``Retry-After`` that says when the oldest request in that window leaves it; refused
requests do not count against the windows, as they did no work.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most ``max_requests`` in any ``window_seconds``."""

    window_seconds: float
    max_requests: int

    def __post_init__(self) -> None:
        if self.window_seconds <= 0 or self.max_requests < 1:
            raise ValueError(f"a rate limit needs a positive window and maximum, not {self}")


# The providers' README: 50 requests/s over a 5-second window, and 10 requests/s averaged
# over 2 minutes. UniAll and AIHubMax document none.
FREEPIK_LIMITS = (RateLimit(5.0, 250), RateLimit(120.0, 1200))


class SlidingWindows:
    """One provider's accepted request times, checked against all its limits at once."""

    def __init__(self, limits: tuple[RateLimit, ...]) -> None:
        self.limits = limits
        self._longest = max((limit.window_seconds for limit in limits), default=0.0)
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()
        self.refused = 0

    def admit(self, now: float) -> float | None:
        """None if a request at ``now`` is within every limit (and count it), else the seconds to wait."""
        with self._lock:
            while self._accepted and self._accepted[0] <= now - self._longest:
                self._accepted.popleft()
            times = list(self._accepted) if self.limits else []
            wait = 0.0
            for limit in self.limits:
                first = bisect.bisect_right(times, now - limit.window_seconds)
                in_window = len(times) - first
                if in_window >= limit.max_requests:
                    # The request that frees a place is the one max_requests back from the end.
                    frees_at = times[len(times) - limit.max_requests] + limit.window_seconds
                    wait = max(wait, frees_at - now)
            if wait > 0:
                self.refused += 1
                return wait
            self._accepted.append(now)
            return None


def retry_after_header(wait_seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_seconds)))}
