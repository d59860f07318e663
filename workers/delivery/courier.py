"""What one worker process keeps for delivering: one HTTP client and the delivery metrics.

A new HTTP client costs ~60 ms of CPU (its TLS context), more than a POST to a nearby endpoint,
so the worker makes one, on first use, and closes it when it stops (`close_courier`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

import httpx

from workers.delivery.metrics import DeliveryMetrics

# One POST may take this long (it must fit in the job timeout with room to record the outcome).
HTTP_TIMEOUT: Final = 10.0


class Courier:
    def __init__(self, metrics: DeliveryMetrics | None = None) -> None:
        self.metrics = metrics or DeliveryMetrics()
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()


@contextlib.asynccontextmanager
async def courier_for(ctx: dict[str, Any]) -> AsyncIterator[Courier]:
    """The worker's courier; a job run outside a worker gets one of its own for the call."""
    found = ctx.get("courier")
    if isinstance(found, Courier):
        yield found
        return
    own = Courier()
    try:
        yield own
    finally:
        await own.aclose()


async def close_courier(ctx: dict[str, Any]) -> None:
    found = ctx.get("courier")
    if isinstance(found, Courier):
        await found.aclose()
