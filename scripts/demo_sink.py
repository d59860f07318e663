"""The demo's downstream: a tiny HTTP server that checks each lifecycle event's Standard Webhooks
signature, counts the events and keeps them for the demo to show (repeats of one `webhook-id`
are counted once, as a real receiver would drop them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import start_uvicorn


@dataclass(frozen=True)
class Received:
    type: str
    extension_id: str
    sequence: int
    state: str
    name: str


@dataclass
class Sink:
    secret: str
    url: str = ""
    events: list[Received] = field(default_factory=list)
    rejected: int = 0
    _seen: set[str] = field(default_factory=set)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return Response(status_code=401)
        event_id = request.headers.get("webhook-id", "")
        if event_id not in self._seen:
            self._seen.add(event_id)
            self.events.append(_received(orjson.loads(body)))
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Sink]:
        app = Starlette(routes=[Route("/offboarding", self._receive, methods=["POST"])])
        server = await start_uvicorn(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.port}/offboarding"
        try:
            yield self
        finally:
            await server.stop()


def _received(message: dict[str, Any]) -> Received:
    data = message.get("data", {})
    user = data.get("user", {})
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part)
    return Received(
        type=str(message.get("type", "")),
        extension_id=str(data.get("extension_id", "")),
        sequence=int(data.get("sequence", 0)),
        state=str(data.get("state", "")),
        name=name,
    )
