"""The call log and per-group counters: what clients asked the sandbox, and what they got."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import asdict, dataclass
from typing import Any

MAX_CALLS = 200_000


@dataclass(frozen=True)
class Call:
    time: float
    method: str
    path: str
    group: str
    status: int
    throttled: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CallLog:
    """Every API request (not the control API), newest last, bounded."""

    def __init__(self) -> None:
        self.calls: deque[Call] = deque(maxlen=MAX_CALLS)
        self.requests: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()

    def record(self, call: Call) -> None:
        self.calls.append(call)
        self.requests[call.group] += 1
        if call.throttled:
            self.throttled[call.group] += 1

    def counters(self) -> dict[str, dict[str, int]]:
        return {"requests": dict(self.requests), "throttled": dict(self.throttled)}
