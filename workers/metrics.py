"""The worker's Prometheus metrics, served on RINGSYNC_METRICS_PORT (0 = off; see
workers.endpoint).

- `ringsync_job_seconds{job,outcome}`: how long each job ran (reconcile latency among them; a
  reconcile done at once inside an ingest job counts as one too);
- `ringsync_ringcentral_requests{account,group,outcome}`: every request sent to RingCentral,
  counted at the HTTP transport, so retries and 429s show as what they cost;
- `ringsync_queue_age_seconds`: how long a job waited, from when it was due (or queued, if
  later: a job taking its turn may be scored earlier, see `events.queue`) until it started;
- `ringsync_lag_seconds`: notification timestamp → mirror row written, for reconciles that
  changed something;
- `ringsync_dead_letters{account,job}`: work given up on;
- `ringsync_subscription_remaining_seconds{account}`: each account's webhook subscription's life
  left (set by its renewal job, counted down between checks); `ringsync_gaps{account,reason}`:
  gaps recorded.

`account` is the stored account's id, `default` for the RC_* environment's: a label only on
counters and gauges, a few series an account; the histograms stay deployment-wide, or a thousand
accounts would make tens of thousands of series.

One registry per worker (tests run several workers in one process).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import httpx
from arq.worker import Function, Retry
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import select

from events.models import Notification
from events.queue import RECONCILE
from workers.ringcentral.session import tls_context
from workers.ringcentral.throttling import group_for
from workers.store import tables

log = logging.getLogger(__name__)

# The `account` label of the default account (the RC_* environment's).
DEFAULT_ACCOUNT: Final = "default"
_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.job_seconds = Histogram(
            "ringsync_job_seconds",
            "Job run time by job and outcome.",
            ["job", "outcome"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.requests = Counter(
            "ringsync_ringcentral_requests",
            "Requests sent to RingCentral by account, rate-limit group and outcome.",
            ["account", "group", "outcome"],
            registry=self.registry,
        )
        self.queue_age = Histogram(
            "ringsync_queue_age_seconds",
            "Time a job waited past its due time before a worker started it.",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.lag = Histogram(
            "ringsync_lag_seconds",
            "Notification timestamp to mirror updated.",
            buckets=_SECONDS,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "ringsync_dead_letters",
            "Jobs given up on and written to dead_letters.",
            ["account", "job"],
            registry=self.registry,
        )
        self.subscription_remaining = Gauge(
            "ringsync_subscription_remaining_seconds",
            "Life left in each account's webhook subscription as of its last check, counted "
            "down to now.",
            ["account"],
            registry=self.registry,
        )
        self.gaps = Counter(
            "ringsync_gaps",
            "Gaps recorded (notifications possibly lost, full resync queued), by account and "
            "reason.",
            ["account", "reason"],
            registry=self.registry,
        )

    def reconciled_inline(self, outcome: str, seconds: float, sent: datetime) -> None:
        """A reconcile done inside an ingest job: its time, and its lag when it changed a row."""
        self.job_seconds.labels(RECONCILE, outcome).observe(seconds)
        if outcome == "changed":
            self.lag.observe(max((datetime.now(UTC) - sent).total_seconds(), 0.0))

    def subscription_expires(self, at: datetime | None, account: str = "") -> None:
        """Count the account's subscription's remaining life down from its last known expiry."""
        gauge = self.subscription_remaining.labels(account or DEFAULT_ACCOUNT)
        if at is None:
            gauge.set(0)
            return
        expiry = at.timestamp()
        gauge.set_function(lambda: max(expiry - time.time(), 0.0))

    def transport(
        self, inner: httpx.AsyncBaseTransport | None = None, *, account: str = ""
    ) -> httpx.AsyncBaseTransport:
        """An HTTP transport for an account's RingCentral client that counts every request.

        Its connection pool is the account's own; its TLS context is the process's one
        (`tls_context`): a transport built with its own loaded the CA bundle again, for every
        account a worker served and for every listing.
        """
        inner = inner or httpx.AsyncHTTPTransport(verify=tls_context())
        return _CountingTransport(inner, self.requests, account)


class _CountingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, requests: Counter, account: str) -> None:
        self._inner = inner
        self._requests = requests
        self._account = account or DEFAULT_ACCOUNT

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        group = group_for(request.method, request.url.path)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError:
            self._requests.labels(self._account, group, "error").inc()
            raise
        status = response.status_code
        outcome = "ok" if status < 400 else "429" if status == 429 else f"{status // 100}xx"
        self._requests.labels(self._account, group, outcome).inc()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


Job = Callable[..., Coroutine[Any, Any, Any]]


def instrument(functions: Sequence[Function]) -> list[Function]:
    """The worker's functions, each timed (and reconciles measured for lag)."""
    return [dataclasses.replace(f, coroutine=_timed(f.name, f.coroutine)) for f in functions]


def _timed(name: str, job: Job) -> Job:
    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        metrics: WorkerMetrics | None = ctx.get("metrics")
        if metrics is None:
            return await job(ctx, *args, **kwargs)
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await job(ctx, *args, **kwargs)
            outcome = result if isinstance(result, str) and len(result) <= 24 else "ok"
            return result
        except Exception as exc:
            outcome = "retry" if isinstance(exc, Retry) else "error"
            raise
        finally:
            metrics.job_seconds.labels(name, outcome).observe(time.perf_counter() - started)
            if outcome == "dead-lettered":
                account = str(kwargs.get("account") or DEFAULT_ACCOUNT)
                metrics.dead_letters.labels(account, name).inc()
            if name == RECONCILE and outcome == "changed":
                cause = kwargs.get("cause", args[2] if len(args) > 2 else None)
                await _observe_lag(ctx, metrics, cause)

    return run


async def _observe_lag(ctx: dict[str, Any], metrics: WorkerMetrics, cause: Any) -> None:
    """Lag from the notification that caused this reconcile (its stored envelope's timestamp)."""
    deps = ctx.get("deps")
    if not isinstance(cause, str) or deps is None:
        return
    events = tables.events
    query = select(events.c.body).where(events.c.uuid == cause)
    try:
        async with deps.store.engine.connect() as conn:
            body = (await conn.execute(query)).scalar_one_or_none()
        if body is None:
            return
        sent = Notification.model_validate_json(body).timestamp
    except Exception:  # a metric never fails a job
        log.debug("lag not measured", exc_info=True, extra={"uuid": cause})
        return
    metrics.lag.observe(max((datetime.now(UTC) - sent).total_seconds(), 0.0))


async def on_job_start(ctx: dict[str, Any]) -> None:
    """arq's hook: how long the job waited past its due time (`score`, ms) or, when it was
    queued later than that (scored at its account's turn), past its queueing."""
    metrics: WorkerMetrics | None = ctx.get("metrics")
    score = ctx.get("score")
    if metrics is not None and isinstance(score, int | float):
        queued = ctx.get("enqueue_time")
        since = score / 1000
        if isinstance(queued, datetime):
            since = max(since, queued.timestamp())
        metrics.queue_age.observe(max(time.time() - since, 0.0))
