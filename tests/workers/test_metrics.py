"""The worker's Prometheus endpoint: reconcile latency, RingCentral calls by group and outcome,
queue age, lag and dead letters; a port already taken does not stop the worker; its /healthz is
answered by the worker's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from events.settings import Settings
from tests.fixtures.pipeline import MakePipeline, eventually
from tests.fixtures.services import free_port
from workers.main import build_worker


async def test_the_worker_serves_its_metrics(make_pipeline: MakePipeline, sqlite_url: str) -> None:
    port = free_port()
    p = await make_pipeline(database_url=sqlite_url, metrics_port=port)
    ext = p.sandbox.world.create_user(first_name="Metric", last_name="Reader")
    await p.converged()
    p.sandbox.world.update_user(ext, last_name="Changed")
    await p.converged()

    async def scraped() -> str:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        # Both changes' lag: the mirror row is committed a moment before its lag is observed.
        return text if "ringsync_lag_seconds_count 2.0" in text and "changed" in text else ""

    text = await eventually(scraped, what="the metrics")
    assert (
        'ringsync_ringcentral_requests_total{account="default",group="light",outcome="ok"}' in text
    )
    assert 'ringsync_job_seconds_count{job="reconcile",outcome="changed"}' in text
    assert "ringsync_queue_age_seconds_count" in text
    assert "ringsync_lag_seconds_count 2.0" in text
    assert "ringsync_dead_letters" in text
    assert "# TYPE ringsync_delivery_attempt_seconds histogram" in text  # served beside them


async def test_a_taken_port_is_a_warning_and_the_worker_runs_on(
    make_pipeline: MakePipeline, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        with caplog.at_level(logging.WARNING, logger="workers.metrics"):
            p = await make_pipeline(database_url=sqlite_url, metrics_port=taken.getsockname()[1])
            p.sandbox.world.create_user(first_name="Still", last_name="Working")
            await p.converged()
    assert any("metrics not served" in r.getMessage() for r in caplog.records)


def _probe(url: str, timeout: float = 1.0) -> int | None:
    """GET `url` from whatever thread calls it: the status, or None when nothing answered."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


async def test_healthz_is_answered_by_the_workers_own_event_loop(
    make_settings: Callable[..., Settings],
) -> None:
    port = free_port()
    worker = build_worker(make_settings(metrics_port=port), handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:

        async def answered() -> bool:
            return await asyncio.to_thread(_probe, f"http://127.0.0.1:{port}/healthz") == 200

        await eventually(answered, what="/healthz")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/nowhere")).status_code == 404
            scraped = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert "ringsync_job_seconds" in scraped.text
        # Wedge the loop the way a blocking call in a hook would: wait on another thread's
        # probe without yielding. Only a server outside the loop could answer it meanwhile.
        with ThreadPoolExecutor(max_workers=1) as pool:
            wedged = pool.submit(_probe, f"http://127.0.0.1:{port}/healthz").result()
        assert wedged is None
        await eventually(answered, what="/healthz once the loop runs again")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
    assert await asyncio.to_thread(_probe, f"http://127.0.0.1:{port}/healthz") is None
