"""One place decides what a failed job does: retry later, or dead-letter with the reason.

Transient failures (RingCentral 429/5xx, network, Redis or database hiccups) raise arq's `Retry`
with a growing, jittered delay; permanent ones, and transient ones that outlived their tries, are
written to `dead_letters` with the arguments needed to replay them. One bad user never blocks
the others: each job fails alone.

Nothing is given up while our own database or Redis is away
(`workers.ringcentral.errors.unreachable`): such a job stays queued, tried again every `BACKOFF[-1]`
seconds for as long as the outage lasts, and so does a job whose dead letter cannot be written. An
acknowledged notification therefore waits on the Redis queue through a database outage of any length
and is ingested once the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from arq.typing import WorkerCoroutine
from arq.worker import Retry
from redis.exceptions import RedisError

from events.settings import Settings
from workers.context import deps
from workers.ringcentral.errors import TransientError, classify, unreachable

log = logging.getLogger(__name__)

# Seconds before try n+1 (the last value repeats): about 50 minutes until the 12th try.
BACKOFF: Final = (1, 5, 15, 30, 60, 120, 300, 600)
MAX_TRANSIENT_TRIES: Final = 12
# arq's own cap, above ours, so arq never drops a job silently ("max retries exceeded"): a week of
# tries every `BACKOFF[-1]` seconds through an outage.
ARQ_MAX_TRIES: Final = 1000

T = TypeVar("T")


def backoff(job_try: int, exc: BaseException | None = None, scale: float = 1.0) -> float:
    """Seconds before the next try: `BACKOFF` times `scale` (RINGSYNC_RETRY_SCALE), jittered,
    and never sooner than a wait RingCentral asked for."""
    hinted = getattr(exc, "retry_after", None) if isinstance(exc, TransientError) else None
    base = float(BACKOFF[min(job_try - 1, len(BACKOFF) - 1)]) * scale
    if hinted is not None:
        base = max(base, float(hinted))
    return base * random.uniform(1.0, 1.25)


def retries(exc: BaseException, job_try: int) -> bool:
    """Whether a job that failed with `exc` on try `job_try` is tried again."""
    if classify(exc) != "transient":
        return False
    return job_try < MAX_TRANSIENT_TRIES or unreachable(exc)


async def retry(
    ctx: dict[str, Any], exc: BaseException, job_try: int, extra: dict[str, Any]
) -> Retry:
    """The `Retry` for a job that failed with `exc` on try `job_try` (logged); see `retries`.

    arq sets a queued job's data to expire a day after it was due and never moves that on: a job
    kept through a longer outage has it extended at every try past its normal ones.
    """
    settings = ctx.get("settings")
    scale = settings.retry_scale if isinstance(settings, Settings) else 1.0
    delay = backoff(job_try, exc, scale)
    if job_try >= MAX_TRANSIENT_TRIES:
        with contextlib.suppress(RedisError, OSError):  # Redis away: arq cannot retry either
            await deps(ctx).queue.hold(str(ctx.get("job_id")), delay)
    log.warning("job failed, retrying in %.1fs: %s", delay, _describe(exc), extra=extra)
    return Retry(defer=delay)


async def guarded(
    ctx: dict[str, Any],
    job: str,
    arguments: dict[str, Any],
    work: Callable[[], Awaitable[T]],
    *,
    failed: int = 0,
) -> T | str:
    """Run `work`; on failure retry (transient) or dead-letter (permanent / out of tries).

    Tries count real failures only: arq's `job_try` (every `Retry` is a failure) plus `failed`,
    those of earlier jobs that handed this work over without failing (see `workers.reconcile`).
    """
    job_try: int = ctx.get("job_try", 1) + failed
    extra = {"job": job, "job_id": ctx.get("job_id"), "job_try": job_try, **arguments}
    try:
        return await work()
    except Retry:
        raise
    except Exception as exc:
        if retries(exc, job_try):
            raise await retry(ctx, exc, job_try, extra) from exc
        reason = f"{type(exc).__name__}: {exc}"
        d = deps(ctx)
        try:
            # The account the job acted for (`scoped` put its Deps in ctx; None: the default's),
            # so a replay acts for it again.
            await d.store.add_dead_letter(
                job=job,
                arguments=arguments,
                error=reason,
                attempts=job_try,
                account_id=d.settings.account or None,
            )
        except Exception as unwritten:
            if classify(unwritten) != "transient":
                raise
            # Given up only once the dead letter is written: until then the job stays queued.
            raise await retry(ctx, unwritten, job_try, extra) from exc
        log.error("job dead-lettered: %s", reason, extra=extra)
        return "dead-lettered"


def bounded(job: WorkerCoroutine, seconds: float) -> WorkerCoroutine:
    """`job`, where running past `seconds` or a transient failure it let escape is a retry.

    arq marks a job that outlives its own timeout, or raises, as failed and never runs it again:
    an ingest cut that way (a database or Redis stalled or away) would lose an acknowledged
    notification. Register the job with arq's timeout a little above `seconds`.
    """

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(seconds):
                return await job(ctx, *args, **kwargs)
        except Retry:
            raise
        except Exception as exc:  # our timeout is a TimeoutError: transient
            job_try: int = ctx.get("job_try", 1)
            if not retries(exc, job_try):
                raise
            extra = {"job_id": ctx.get("job_id"), "job_try": job_try}
            raise await retry(ctx, exc, job_try, extra) from exc

    return run


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
