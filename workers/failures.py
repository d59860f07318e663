"""One place decides what a failed job does: retry later, or dead-letter with the reason.

Transient failures (RingCentral 429/5xx, network, Redis or database hiccups) raise arq's `Retry`
with a growing, jittered delay; permanent ones, and transient ones that outlived their tries, are
written to `dead_letters` with the arguments needed to replay them. One bad user never blocks
the others: each job fails alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from arq.typing import WorkerCoroutine
from arq.worker import Retry

from workers.context import deps
from workers.errors import TransientError, classify

log = logging.getLogger(__name__)

# Seconds before try n+1 (the last value repeats): about 40 minutes in all.
BACKOFF: Final = (1, 5, 15, 30, 60, 120, 300, 600)
MAX_TRANSIENT_TRIES: Final = 12
# arq's own cap, above ours, so arq never drops a job silently ("max retries exceeded").
ARQ_MAX_TRIES: Final = 1000

T = TypeVar("T")


def backoff(job_try: int, exc: BaseException | None = None) -> float:
    hinted = getattr(exc, "retry_after", None) if isinstance(exc, TransientError) else None
    base = float(BACKOFF[min(job_try - 1, len(BACKOFF) - 1)])
    if hinted is not None:
        base = max(base, float(hinted))
    return base * random.uniform(1.0, 1.25)


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
    those of earlier jobs that handed this work over without failing (see `workers.refresh`).
    """
    job_try: int = ctx.get("job_try", 1) + failed
    extra = {"job": job, "job_id": ctx.get("job_id"), "job_try": job_try, **arguments}
    try:
        return await work()
    except Retry:
        raise
    except Exception as exc:
        kind = classify(exc)
        if kind == "transient" and job_try < MAX_TRANSIENT_TRIES:
            delay = backoff(job_try, exc)
            log.warning("job failed, retrying in %.1fs: %s", delay, exc, extra=extra)
            raise Retry(defer=delay) from exc
        reason = f"{type(exc).__name__}: {exc}"
        log.error("job dead-lettered: %s", reason, extra=extra)
        await deps(ctx).store.add_dead_letter(
            job=job, arguments=arguments, error=reason, attempts=job_try
        )
        return "dead-lettered"


def bounded(job: WorkerCoroutine, seconds: float) -> WorkerCoroutine:
    """`job`, where running past `seconds` or a transient failure it let escape is a retry.

    arq marks a job that outlives its own timeout, or raises, as failed and never runs it again:
    an ingest cut that way (a database or Redis stalled or away) would lose an acknowledged
    notification. Register the job with arq's timeout a little above `seconds`.
    """

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        job_try: int = ctx.get("job_try", 1)
        try:
            async with asyncio.timeout(seconds):
                return await job(ctx, *args, **kwargs)
        except Retry:
            raise
        except Exception as exc:  # our timeout is a TimeoutError: transient
            if classify(exc) != "transient" or job_try >= MAX_TRANSIENT_TRIES:
                raise
            delay = backoff(job_try, exc)
            extra = {"job_id": ctx.get("job_id"), "job_try": job_try}
            log.warning(
                "job failed (%s), retrying in %.1fs", type(exc).__name__, delay, extra=extra
            )
            raise Retry(defer=delay) from exc

    return run
