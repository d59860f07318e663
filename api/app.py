"""`ringsync api` as one ASGI app: `/healthz` (open), `/v1` and `/metrics` (RINGSYNC_API_TOKEN),
`/scim/v2` (RINGSYNC_SCIM_TOKEN; absent without it), and the console at `/` (a login with
RINGSYNC_API_TOKEN opens a session). The SCIM token is no key to `/v1` nor the
API token to `/scim/v2`. Store, Redis and queue are opened in the lifespan, never at import.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, request_response

from api.console.app import create_console
from api.guard import BearerGuard
from api.metrics import metrics
from api.openapi import openapi
from api.scim.routes import create_scim_app
from api.state import ApiState
from api.v1 import ROUTES, refuse, reply
from events.queue import Queue
from events.settings import Settings
from workers.coalesce import Coalescer
from workers.context import Deps
from workers.ringcentral.client import RingCentral
from workers.store.identity import Store


async def healthz(request: Request) -> Response:
    return reply({"status": "ok"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return refuse(exc.status_code, "not_found" if exc.status_code == 404 else "http", exc.detail)


def _unauthorized() -> Response:
    return refuse(401, "unauthorized", "a bearer token (RINGSYNC_API_TOKEN) is required")


@contextlib.asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[ApiState]:
    """A worker's dependencies for this process, closed after it."""
    redis: Redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    # Pinged: a request the API answers with a 500 because PostgreSQL restarted is not retried
    # for the caller the way a worker's job is.
    store = await Store.open(settings.database_url, pre_ping=True)
    queue = Queue(redis, settings.queue_name)
    client = RingCentral(settings, redis)
    coalescer = Coalescer(redis, settings, window=settings.coalesce_window)
    try:
        yield ApiState(Deps(settings, redis, queue, store, client, coalescer))
    finally:
        with contextlib.suppress(RedisError, OSError):
            await queue.close()
        await client.aclose()
        await store.close()
        await redis.aclose()


def create_app(settings: Settings) -> Starlette:
    """The API as an ASGI app (see the module docstring)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, ApiState]]:
        async with open_state(settings) as state:
            yield {"api": state}

    v1 = Starlette(
        routes=[*ROUTES, Route("/openapi.json", openapi, methods=["GET"])],
        exception_handlers={HTTPException: _http_error},
    )
    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(
                "/metrics",
                BearerGuard(request_response(metrics), settings.api_token, _unauthorized),
                methods=["GET"],
            ),
            Mount("/v1", BearerGuard(v1, settings.api_token, _unauthorized)),
            Mount("/scim/v2", create_scim_app(settings)),
            Mount("", create_console()),
        ],
        lifespan=lifespan,
    )
