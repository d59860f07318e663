"""A downstream offboarding endpoint: checks each Standard Webhooks signature, counts webhook-ids.

"Exactly once" is judged here: every outbox row's event arrives, and no webhook-id twice.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fixtures.receiver import serve_app


@dataclass
class OffboardingSink:
    # Standard Webhooks secrets are standard base64 after the prefix (not the URL-safe kind).
    secret: str = field(
        default_factory=lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    )
    receipts: Counter[str] = field(default_factory=Counter)
    bodies: dict[str, Any] = field(default_factory=dict)
    forged: int = 0
    url: str = ""

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except Exception:  # any failed check: wrong signature, stale timestamp, bad body
            self.forged += 1
            return Response(status_code=400)
        webhook_id = request.headers["webhook-id"]
        self.receipts[webhook_id] += 1
        self.bodies[webhook_id] = payload
        return Response(status_code=204)

    def duplicates(self) -> dict[str, int]:
        return {key: n for key, n in self.receipts.items() if n > 1}

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[OffboardingSink]:
        app = Starlette(routes=[Route("/hooks", self.endpoint, methods=["POST"])])
        async with serve_app(app) as base:
            self.url = f"{base}/hooks"
            yield self
