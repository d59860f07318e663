"""The receiver's Prometheus metrics, in a registry of its own (one per app, so tests can make
several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


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

    def count(self, outcome: str) -> None:
        # Children are cached by prometheus-client, but labels() still takes a lock and builds a
        # key on every call; the hot path keeps its own.
        child = self._children.get(outcome)
        if child is None:
            child = self._children[outcome] = self.requests.labels(outcome)
        child.inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
