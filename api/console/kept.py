"""A value the console reads at most every few seconds in a process (the accounts and what needs
a look on any page: every request would otherwise read them again), forgotten at once when one of
the console's own forms changes something."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Kept(Generic[T]):
    ttl: float
    _value: T | None = field(default=None, repr=False)
    _at: float = float("-inf")

    def get(self) -> T | None:
        return self._value if time.monotonic() - self._at < self.ttl else None

    def keep(self, value: T) -> T:
        self._value, self._at = value, time.monotonic()
        return value

    def forget(self) -> None:
        self._at = float("-inf")
