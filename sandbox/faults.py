"""Faults to inject: into webhook deliveries (drop, duplicate, delay, reorder) and into API
calls (a share of 5xx answers, added latency, chosen calls refused). Seedable so a failing test
can be replayed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: bool = False
    error_rate: float = 0.0
    latency: float = 0.0
    # "METHOD /path/with/*/wildcards" → the HTTP status every matching call is refused with.
    refuse: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay < 0 or self.latency < 0:
            raise ValueError("delay and latency must not be negative")
        for call, status in self.refuse.items():
            if len(call.split(" ")) != 2 or not isinstance(status, int) or not 400 <= status < 600:
                raise ValueError("refuse maps 'METHOD /path' to a 4xx or 5xx status")
        self.rng = random.Random(self.seed)

    def chance(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    def refusal(self, method: str, path: str) -> int | None:
        """The status a call is refused with, or None when it goes through."""
        for call, status in self.refuse.items():
            wanted_method, pattern = call.split(" ")
            if wanted_method.upper() == method.upper() and fnmatchcase(path, pattern):
                return status
        return None
