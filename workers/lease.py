"""arq's in-progress key as a lease: short for every job, renewed while a long job runs.

arq lets another worker take a job over once its `arq:in-progress:<id>` key expires, and it
sets that key for the longest timeout of *all* functions plus 10 s. With listings allowed 30
minutes, a SIGKILLed worker's ingest and reconcile jobs would wait half an hour. So the worker
leases every job for `job_timeout + 10 s` only, and long jobs renew their lease while alive:
when their worker dies, the renewals stop and the job is taken over just as quickly.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from arq.constants import in_progress_key_prefix
from arq.typing import WorkerCoroutine

from events.settings import Settings
from workers.lock import kept_alive

# arq's own margin above the timeout before a job counts as abandoned.
MARGIN: Final = 10.0


def lease_seconds(settings: Settings) -> float:
    """How long a job may go unrenewed before another worker takes it over."""
    return settings.job_timeout + MARGIN


def renewed(job: WorkerCoroutine, lease: float) -> WorkerCoroutine:
    """`job`, renewing its in-progress lease every third of `lease` while it runs."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        async with kept_alive(ctx["redis"], in_progress_key_prefix + str(ctx["job_id"]), lease):
            return await job(ctx, *args, **kwargs)

    return run
