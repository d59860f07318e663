"""The worker's HTTP endpoint on RINGSYNC_METRICS_HOST:RINGSYNC_METRICS_PORT: `GET /metrics`
(Prometheus text format) and `GET /healthz`.

It is served by the worker's own event loop, never by a thread of its own: a loop that is wedged
(a blocking call in a hook, say) or gone leaves `/healthz` unanswered, so a healthcheck sees
that very worker as dead, which it is for all the work it does. A server in a separate thread
would go on answering for a worker that no longer runs anything.

A few lines of HTTP/1.1 on asyncio streams: one request per connection, then close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# A client gets this long to send its request line and headers (slow clients hold no slot).
READ_TIMEOUT: Final = 5.0
MAX_HEADER_LINES: Final = 100
_REASONS: Final = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}


class Endpoint:
    """`/metrics` and `/healthz` for one worker, started in its `on_startup`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> bool:
        """Listen on `host:port` (port 0 = off); False with a warning when it cannot."""
        if port == 0:
            return False
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            log.warning("metrics not served: %s:%d: %s", host, port, exc.strerror or exc)
            return False
        log.info("metrics served", extra={"host": host, "port": port})
        return True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        route = path.split("?", 1)[0]
        if route not in ("/metrics", "/healthz"):
            return 404, "text/plain; charset=utf-8", b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain; charset=utf-8", b"method not allowed\n"
        if route == "/healthz":
            return 200, "text/plain; charset=utf-8", b"ok\n"
        return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                request = (await reader.readline()).decode("latin-1").split()
                for _ in range(MAX_HEADER_LINES):
                    if (await reader.readline()).strip() == b"":
                        break
            if len(request) == 3:
                status, content_type, body = self._answer(request[0], request[1])
            else:
                status, content_type, body = 400, "text/plain; charset=utf-8", b"bad request\n"
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if request[:1] == ["HEAD"] else body))
            await writer.drain()
        except (TimeoutError, OSError, ValueError):  # ValueError: a line past the stream limit
            pass  # the client went away or never finished asking: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
