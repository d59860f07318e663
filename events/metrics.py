"""The receiver's Prometheus metrics, in a registry of its own (one per app, so tests can make
several apps in one process).

The receiver serves no /metrics of its own (its port is public): every few seconds it adds what
its counters grew by to one Redis hash, which `ringsync api` serves behind its token. The sums
are those of every receiver process, and nothing is lost across a failed write (what was not
written is added next time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Seconds between two publications of the counters.
PUBLISH_EVERY: Final = 5.0


class ReceiverMetrics:
    """Requests by outcome and how long the durable hand-off to Redis takes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ringsync_webhook_requests",
            "Webhook requests by outcome (queued, duplicate, handshake, invalid, ...).",
            ["outcome"],
            registry=self.registry,
        )
        self.enqueue_seconds = Histogram(
            "ringsync_enqueue_seconds",
            "Time from a valid notification to its durable enqueue on Redis.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self._children: dict[str, Counter] = {}
        self._published: dict[str, float] = {}

    def count(self, outcome: str) -> None:
        # Children are cached by prometheus-client, but labels() still takes a lock and builds a
        # key on every call; the hot path keeps its own.
        child = self._children.get(outcome)
        if child is None:
            child = self._children[outcome] = self.requests.labels(outcome)
        child.inc()

    def growth(self) -> dict[str, float]:
        """Each sample's growth since the last publication, keyed by what the API needs to
        serve it again (family, type, help, sample name, labels)."""
        grown: dict[str, float] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # a per-process start time: meaningless summed
                key = orjson.dumps(
                    [family.name, family.type, family.documentation, sample.name, sample.labels]
                ).decode()
                delta = sample.value - self._published.get(key, 0.0)
                if delta:
                    grown[key] = delta
        return grown

    async def publish(self, redis: Redis, key: str) -> None:
        """Add the growth since the last publication to the hash at `key`."""
        grown = self.growth()
        if not grown:
            return
        async with redis.pipeline(transaction=True) as pipe:
            for field, delta in grown.items():
                pipe.hincrbyfloat(key, field, delta)
            await pipe.execute()
        for field, delta in grown.items():
            self._published[field] = self._published.get(field, 0.0) + delta

    async def publish_every(self, redis: Redis, key: str, every: float = PUBLISH_EVERY) -> None:
        """Publish until cancelled; a Redis away costs a skipped publication, nothing else."""
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await self.publish(redis, key)
