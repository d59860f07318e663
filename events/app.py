"""The receiver: RingCentral POSTs here; we answer 200 only after the notification is queued.

POST /webhook: handshake → size limit → token → parse → durable enqueue → 200. Nothing here waits
on RingCentral or the database; a Redis that is down or slow gives a fast 503, never a 200 for an
event that was not queued, and what was refused is reported once Redis is back (see
`events.refusals`), so that a resync repairs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from events.metrics import ReceiverMetrics
from events.models import Kind, Notification
from events.queue import INGEST, Queue
from events.refusals import Refusals
from events.routing import Router
from events.settings import Settings
from events.verify import VALIDATION_HEADER, VERIFICATION_HEADER, handshake_token, token_matches

log = logging.getLogger(__name__)

_JSON = "application/json"
_OK = b'{"status":"ok"}'


@dataclass(slots=True)
class Receiver:
    """What the routes need, opened in the lifespan and closed after it."""

    settings: Settings
    redis: Redis
    queue: Queue
    metrics: ReceiverMetrics
    refusals: Refusals
    router: Router
    # A notification's job id is this plus its uuid (`Settings.key("notification", uuid)`).
    job_prefix: str = field(init=False)

    def __post_init__(self) -> None:
        self.job_prefix = self.settings.key("notification", "")


def receiver(request: Request) -> Receiver:
    # The lifespan's state, read from the scope: `request.state` builds a wrapper a request.
    return cast(Receiver, request.scope["state"]["receiver"])


def _reply(status: int, outcome: str, metrics: ReceiverMetrics, reason: str = "") -> Response:
    metrics.count(outcome)
    body = _OK if status == 200 else orjson.dumps({"error": outcome, "reason": reason})
    return Response(body, status_code=status, media_type=_JSON)


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, declared: str | None, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` bytes (before anything parses it)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    # Straight from `receive` (what `request.stream()` does, without an async generator).
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


# The request headers the webhook reads, by their place in what `_headers` returns.
_CONTENT_LENGTH, _VERIFICATION, _VALIDATION = 0, 1, 2
_READ = {
    b"content-length": _CONTENT_LENGTH,
    VERIFICATION_HEADER.encode(): _VERIFICATION,
    VALIDATION_HEADER.encode(): _VALIDATION,
}


def _headers(request: Request) -> list[str | None]:
    """Content-Length, Verification-Token and Validation-Token (the first of each, or None),
    in one pass over the raw headers: `request.headers.get` raises and catches a KeyError for
    each one missing."""
    found: list[str | None] = [None, None, None]
    for name, value in request.scope["headers"]:
        place = _READ.get(name)
        if place is not None and found[place] is None:
            found[place] = value.decode("latin-1")
    return found


def _reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"[:200]


async def webhook(request: Request) -> Response:
    rx = receiver(request)
    metrics = rx.metrics
    headers = _headers(request)
    try:
        body = await _read_body(request, headers[_CONTENT_LENGTH], rx.settings.max_body_bytes)
    except _TooLarge:
        return _reply(413, "too_large", metrics, f"body over {rx.settings.max_body_bytes} bytes")
    except ClientDisconnect:
        return _reply(400, "disconnected", metrics, "client went away")

    echo = handshake_token(headers[_VALIDATION], body)
    if echo is not None:
        metrics.count("handshake")
        log.info("subscription handshake answered")
        return Response(b"", media_type=_JSON, headers={"Validation-Token": echo})

    candidates = (headers[_VERIFICATION], headers[_VALIDATION])
    try:
        notification = Notification.model_validate_json(body)
    except ValidationError as exc:
        # Nobody learns whether a body parses without the deployment's token.
        if not token_matches(rx.settings.verification_token, *candidates):
            return _refuse(metrics)
        reason = _reason(exc)
        log.warning("notification refused: %s", reason)
        return _reply(400, "invalid", metrics, reason)
    try:
        account = await rx.router.check(notification, *candidates)
    except (RedisError, OSError, TimeoutError) as exc:
        log.error("notification not routed: %s", type(exc).__name__)
        rx.refusals.note(None)
        return _reply(503, "unavailable", metrics, "queue unavailable, retry later")
    if account is None:
        return _refuse(metrics)

    # A stored account's ingest acts for it; the default account's looks as it always did.
    scope: dict[str, Any] = {"account": account} if account else {}
    kind = notification.kind
    started = time.perf_counter()
    try:
        # The queue's write times out (RINGSYNC_ENQUEUE_TIMEOUT), failing every request it held.
        queued = await rx.queue.enqueue(
            INGEST,
            body,
            int(time.time() * 1000),
            # Unknown events are queued too, marked so: kept for audit, never reconciled.
            kind.value,
            job_id=rx.job_prefix + notification.uuid,
            **scope,
        )
    except Exception as exc:  # whatever kept it off Redis: a 503, noted for repair, never a 200
        log.error(
            "notification not queued: %s",
            type(exc).__name__,
            extra={"uuid": notification.uuid},
        )
        rx.refusals.note(account)
        return _reply(503, "unavailable", metrics, "queue unavailable, retry later")
    metrics.enqueue_seconds.observe(time.perf_counter() - started)
    if kind is Kind.UNKNOWN:
        log.info("unknown event kept for audit", extra={"uuid": notification.uuid})
    return _reply(200, "queued" if queued else "duplicate", metrics)


def _refuse(metrics: ReceiverMetrics) -> Response:
    log.warning("notification refused: verification token missing or wrong")
    return _reply(401, "unauthorized", metrics, "Verification-Token missing or wrong")


async def healthz(request: Request) -> Response:
    return Response(_OK, media_type=_JSON)


async def readyz(request: Request) -> Response:
    rx = receiver(request)
    try:
        await asyncio.wait_for(rx.redis.ping(), rx.settings.enqueue_timeout)
    except (RedisError, OSError, TimeoutError) as exc:
        return Response(
            orjson.dumps({"status": "unavailable", "redis": type(exc).__name__}),
            status_code=503,
            media_type=_JSON,
        )
    return Response(_OK, media_type=_JSON)


def open_redis(settings: Settings) -> Redis:
    """A client that fails fast: the receiver must answer 503 quickly when Redis is away."""
    client: Redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.enqueue_timeout,
        socket_timeout=settings.enqueue_timeout,
    )
    return client


def create_app(settings: Settings) -> Starlette:
    """The receiver as an ASGI app; Redis is opened in the lifespan, never at import."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Receiver]]:
        if not settings.verification_token.get_secret_value():
            log.warning(
                "RINGSYNC_VERIFICATION_TOKEN is not set: every notification will be accepted"
            )
        redis = open_redis(settings)
        queue = Queue(redis, settings.queue_name, timeout=settings.enqueue_timeout)
        refusals = Refusals(settings, redis, queue)
        metrics = ReceiverMetrics()
        # Served by `ringsync api` (see events.metrics); the receiver's port is public.
        published = asyncio.create_task(metrics.publish_every(redis, settings.metrics_key))
        try:
            router = Router(settings, redis)
            yield {"receiver": Receiver(settings, redis, queue, metrics, refusals, router)}
        finally:
            published.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await published
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await metrics.publish(redis, settings.metrics_key)
            await refusals.close()
            with contextlib.suppress(RedisError, OSError):
                await queue.close()
            await redis.aclose()

    return Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
