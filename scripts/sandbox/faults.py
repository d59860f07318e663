"""Faults to inject: into webhook deliveries (drop, duplicate, delay, reorder) and into API
calls (a share of 5xx answers, added latency). Seedable so a failing test can be replayed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    reorder: bool = False
    error_rate: float = 0.0
    latency: float = 0.0
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay < 0 or self.latency < 0:
            raise ValueError("delay and latency must not be negative")
        self.rng = random.Random(self.seed)

    def chance(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability
