"""The sandbox clock: real time plus an offset tests can advance.

Only token and subscription expiry follow it; rate limits run on real monotonic time, as
RingCentral's do, so advancing the clock never lifts a penalty.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock seconds that can jump forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds

    def iso(self, at: float | None = None) -> str:
        """RingCentral's timestamp format: milliseconds and `Z`."""
        moment = datetime.fromtimestamp(self.now() if at is None else at, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
