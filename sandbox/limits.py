"""Per-group sliding-window rate limits with RingCentral's penalty box.

Each group (Light, Medium, Heavy, Auth) allows `limit` requests in any `window` seconds. The
request that exceeds it gets 429 and opens a penalty of `penalty` seconds; every request that
arrives during the penalty is refused too and restarts it, which is why clients must go quiet.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

DEFAULT_LIMITS: dict[str, int] = {"light": 50, "medium": 40, "heavy": 10, "auth": 5}
DEFAULT_WINDOW = 60.0
# With limits off every group still reports a limit, so budget-aware clients run at full speed.
UNLIMITED = 1_000_000

RateLimitSpec = str | Mapping[str, float] | None


@dataclass
class Decision:
    """The outcome of one request against its group's budget, and the headers that say so."""

    group: str
    allowed: bool
    limit: int
    remaining: int
    window: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Rate-Limit-Group": self.group,
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Window": str(self.window),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


@dataclass
class _Bucket:
    limit: int
    stamps: deque[float] = field(default_factory=deque)
    penalty_until: float = 0.0


class RateLimiter:
    """Sliding windows per group on monotonic time; `limits=None` means no throttling."""

    def __init__(
        self,
        limits: Mapping[str, int] | None,
        *,
        window: float = DEFAULT_WINDOW,
        penalty: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = limits is not None
        self.window = window
        self.penalty = window if penalty is None else penalty
        self._now = now
        self._buckets = {
            group.lower(): _Bucket(limit) for group, limit in (limits or DEFAULT_LIMITS).items()
        }

    def check(self, group: str) -> Decision:
        """Count one request in `group` and say whether it may proceed."""
        group = group.lower()
        window = max(1, math.ceil(self.window))
        bucket = self._buckets.get(group)
        if not self.enabled or bucket is None:
            return Decision(group, True, UNLIMITED, UNLIMITED, window)
        now = self._now()
        if now < bucket.penalty_until:
            bucket.penalty_until = now + self.penalty
            return self._refused(group, bucket, window)
        while bucket.stamps and bucket.stamps[0] <= now - self.window:
            bucket.stamps.popleft()
        if len(bucket.stamps) >= bucket.limit:
            bucket.penalty_until = now + self.penalty
            return self._refused(group, bucket, window)
        bucket.stamps.append(now)
        return Decision(group, True, bucket.limit, bucket.limit - len(bucket.stamps), window)

    def _refused(self, group: str, bucket: _Bucket, window: int) -> Decision:
        retry = max(1, math.ceil(bucket.penalty_until - self._now()))
        return Decision(group, False, bucket.limit, 0, window, retry_after=retry)


def build_limiter(
    spec: RateLimitSpec, *, window: float = DEFAULT_WINDOW, penalty: float | None = None
) -> RateLimiter:
    """`"default"`, `"off"`, a path to a JSON file, or a mapping of group -> requests per window.

    A mapping (or file) may also carry `"window"` and `"penalty"` in seconds, for fast tests.
    """
    if spec is None or spec == "off":
        return RateLimiter(None, window=window, penalty=penalty)
    if spec == "default":
        return RateLimiter(DEFAULT_LIMITS, window=window, penalty=penalty)
    if isinstance(spec, str):
        loaded = orjson.loads(Path(spec).read_bytes())
        if not isinstance(loaded, dict):
            raise ValueError(f"{spec}: expected a JSON object of group -> requests per minute")
        spec = loaded
    limits: dict[str, int] = {}
    for key, value in spec.items():
        if key == "window":
            window = float(value)
        elif key == "penalty":
            penalty = float(value)
        else:
            limits[key.lower()] = int(value)
    return RateLimiter(limits, window=window, penalty=penalty)
