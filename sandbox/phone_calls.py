"""The phone calls an account made and received: what `sandbox.call_log` lists.

(Not to be confused with `sandbox.calls`, the log of API requests clients sent the sandbox.)
Calls are kept as small slotted objects sorted by start time, so 100,000 of them stay cheap and
a page is a slice found by bisection.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

DIRECTIONS = ("Inbound", "Outbound")


@dataclass(frozen=True, slots=True)
class PhoneCall:
    """One call as the sandbox keeps it; a party is an extension id or an outside number."""

    start: float
    id: str
    direction: str
    result: str
    from_extension: str | None
    from_number: str | None
    to_extension: str | None
    to_number: str | None
    duration: int


class PhoneCalls:
    """Every call of one account, sorted by start time."""

    def __init__(self) -> None:
        self._calls: list[PhoneCall] = []
        self._starts: list[float] = []
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._calls)

    def add(
        self,
        *,
        direction: str,
        result: str,
        start: float,
        from_extension: str | None = None,
        from_number: str | None = None,
        to_extension: str | None = None,
        to_number: str | None = None,
        duration: int = 60,
    ) -> PhoneCall:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        if not result:
            raise ValueError("result is required (e.g. 'Call connected', 'Missed')")
        if not (from_extension or from_number) or not (to_extension or to_number):
            raise ValueError("a call needs a 'from' and a 'to' party")
        call = PhoneCall(
            start=start,
            id=f"CL{next(self._ids):09d}",
            direction=direction,
            result=result,
            from_extension=from_extension,
            from_number=from_number,
            to_extension=to_extension,
            to_number=to_number,
            duration=duration,
        )
        at = bisect.bisect_right(self._starts, start)
        self._starts.insert(at, start)
        self._calls.insert(at, call)
        return call

    def generate(
        self, count: int, extensions: Sequence[str], since: float, until: float, seed: int = 0
    ) -> int:
        """`count` calls spread over [since, until), each between an extension and the
        outside world, for benchmarks (appended in one sort, not one insertion each)."""
        if count < 0 or not extensions or until <= since:
            raise ValueError("generate needs count >= 0, extensions and since < until")
        rng = random.Random(seed)
        results = ("Call connected", "Accepted", "Missed", "Voicemail")
        for _ in range(count):
            extension = extensions[rng.randrange(len(extensions))]
            outside = f"+1650{rng.randrange(10**7):07d}"
            outbound = rng.random() < 0.5
            self._calls.append(
                PhoneCall(
                    start=rng.uniform(since, until),
                    id=f"CL{next(self._ids):09d}",
                    direction="Outbound" if outbound else "Inbound",
                    result="Call connected" if outbound else rng.choice(results),
                    from_extension=extension if outbound else None,
                    from_number=None if outbound else outside,
                    to_extension=None if outbound else extension,
                    to_number=outside if outbound else None,
                    duration=rng.randrange(5, 900),
                )
            )
        self._calls.sort(key=lambda call: call.start)
        self._starts = [call.start for call in self._calls]
        return count

    def between(self, since: float, until: float, extension: str | None = None) -> _Newest:
        """The calls with since <= start <= until, newest first (optionally one extension's)."""
        low = bisect.bisect_left(self._starts, since)
        high = bisect.bisect_right(self._starts, until)
        if extension is None:
            return _Newest(self._calls, low, high)
        own = [c for c in self._calls[low:high] if extension in (c.from_extension, c.to_extension)]
        return _Newest(own, 0, len(own))


class _Newest(Sequence[PhoneCall]):
    """calls[low:high] reversed, without copying them (a page slices it)."""

    def __init__(self, calls: list[PhoneCall], low: int, high: int) -> None:
        self._calls, self._low, self._high = calls, low, high

    def __len__(self) -> int:
        return self._high - self._low

    @overload
    def __getitem__(self, index: int) -> PhoneCall: ...
    @overload
    def __getitem__(self, index: slice) -> list[PhoneCall]: ...
    def __getitem__(self, index: int | slice) -> PhoneCall | list[PhoneCall]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._calls[self._high - 1 - index]

    def __iter__(self) -> Iterator[PhoneCall]:
        return (self[i] for i in range(len(self)))
