"""Prometheus metrics of outbox delivery, in a registry of their own (one per worker process,
so tests can run several workers in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class DeliveryMetrics:
    """Attempts by outcome, how long an attempt takes, and how late events reach downstream."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "ringsync_delivery_attempts",
            "Delivery attempts by outcome (delivered, retrying, dead, unsubscribed).",
            ["outcome"],
            registry=self.registry,
        )
        self.failures = Counter(
            "ringsync_delivery_failures",
            "Failed delivery attempts by kind (http status class, network, hook, unsigned).",
            ["kind"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "ringsync_delivery_attempt_seconds",
            "Time one delivery attempt (POST or hook call) takes.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.latency_seconds = Histogram(
            "ringsync_delivery_latency_seconds",
            "Time from the outbox row's commit to its successful delivery.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400),
            registry=self.registry,
        )
