"""Transient failures retry with backoff, permanent ones are dead-lettered with their reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.worker import Retry

from events.settings import Settings
from workers.context import Deps
from workers.errors import ApiError, RateLimited, ServerUnavailable
from workers.failures import MAX_TRANSIENT_TRIES, backoff, bounded, guarded
from workers.store import Store


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    store = await Store.open(sqlite_url)
    yield store
    await store.close()


def ctx_for(store: Store, settings: Settings, job_try: int) -> dict[str, Any]:
    d = Deps.__new__(Deps)
    d.settings, d.store = settings, store
    return {"deps": d, "job_try": job_try, "job_id": "j-1"}


def failing(exc: Exception) -> Callable[[], Any]:
    async def work() -> str:
        raise exc

    return work


async def test_transient_failures_retry_with_growing_delays(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    delays = []
    for job_try in (1, 2, 3):
        ctx = ctx_for(store, make_settings(), job_try)
        with pytest.raises(Retry) as raised:
            await guarded(ctx, "reconcile", {}, failing(ServerUnavailable("503", status=503)))
        delays.append(raised.value.defer_score or 0)
    assert delays == sorted(delays)
    assert await store.list_dead_letters() == []


async def test_retry_after_is_honoured() -> None:
    assert backoff(1, RateLimited("light", 42.0)) >= 42.0


async def test_permanent_failures_are_dead_lettered(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), 1)
    error = ApiError("GET /x: HTTP 400 CMN-101 bad", status=400, error_code="CMN-101")
    outcome = await guarded(ctx, "reconcile", {"extension_id": "7"}, failing(error))
    assert outcome == "dead-lettered"
    (letter,) = await store.list_dead_letters()
    assert letter.job == "reconcile"
    assert letter.arguments == {"extension_id": "7"}
    assert "CMN-101" in letter.error


async def test_transient_failures_that_outlive_their_tries_are_dead_lettered(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), MAX_TRANSIENT_TRIES)
    outcome = await guarded(
        ctx, "ingest", {"uuid": "u"}, failing(ServerUnavailable("503", status=503))
    )
    assert outcome == "dead-lettered"
    assert len(await store.list_dead_letters()) == 1


async def _slow(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


async def test_a_job_past_its_own_time_is_retried_instead_of_failed_by_arq() -> None:
    job = bounded(_slow, 0.05)
    assert await job({"job_try": 1}, 0.0) == "done"
    with pytest.raises(Retry):
        await job({"job_try": 1, "job_id": "j-1"}, 5.0)
    with pytest.raises(TimeoutError):  # out of tries: arq records the failure
        await job({"job_try": MAX_TRANSIENT_TRIES}, 5.0)


async def test_a_transient_failure_escaping_a_job_is_retried_a_permanent_one_raised() -> None:
    async def refused(ctx: dict[str, Any]) -> None:
        raise ConnectionRefusedError("database away")

    async def bug(ctx: dict[str, Any]) -> None:
        raise KeyError("a bug")

    with pytest.raises(Retry):
        await bounded(refused, 5)({"job_try": 1})
    with pytest.raises(KeyError):
        await bounded(bug, 5)({"job_try": 1})


async def test_failures_handed_over_from_earlier_jobs_count(
    store: Store, make_settings: Callable[..., Settings]
) -> None:
    ctx = ctx_for(store, make_settings(), 1)
    error = ServerUnavailable("503", status=503)
    with pytest.raises(Retry):
        await guarded(ctx, "reconcile", {}, failing(error), failed=MAX_TRANSIENT_TRIES - 2)
    outcome = await guarded(ctx, "reconcile", {}, failing(error), failed=MAX_TRANSIENT_TRIES - 1)
    assert outcome == "dead-lettered"
    (letter,) = await store.list_dead_letters()
    assert letter.attempts == MAX_TRANSIENT_TRIES
