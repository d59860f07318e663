"""Sending to webhook addresses: the creation handshake and notification delivery with faults.

The handshake is RingCentral's: POST with a `Validation-Token` header, and the endpoint must
answer 200 echoing it, within 3 s, in at most 1024 bytes. Deliveries carry `Verification-Token`;
a run of failed deliveries blacklists the subscription, permanently.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
import orjson

from sandbox.faults import Faults
from sandbox.notifications import Outgoing

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT = 3.0
HANDSHAKE_MAX_BYTES = 1024


class HandshakeFailed(Exception):
    """The address did not answer the Validation-Token request correctly (SUB-525)."""


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, for tests to look at: status is the HTTP status, or 0."""

    uuid: str
    subscription_id: str
    event: str
    status: int
    outcome: str  # delivered | failed | dropped


async def handshake(client: httpx.AsyncClient, address: str) -> None:
    token = secrets.token_urlsafe(24)
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            response = await client.post(address, headers={"Validation-Token": token})
    except (TimeoutError, httpx.HTTPError) as exc:
        raise HandshakeFailed(f"WebHook did not respond in time ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise HandshakeFailed(
            f"WebHook responds with incorrect HTTP status. HTTP status is {response.status_code}"
        )
    if response.headers.get("Validation-Token") != token:
        raise HandshakeFailed("WebHook responds with incorrect or missing Validation-Token header")
    if len(response.content) > HANDSHAKE_MAX_BYTES:
        raise HandshakeFailed("WebHook response is too large")


# Deliveries in flight at once, across every account a server holds. It stays below the HTTP
# client's connection pool (100): requests queued inside that pool cost time quadratic in their
# number (each one freed scans the whole queue), which stalled a server of hundreds of accounts.
DELIVERIES_AT_ONCE = 32


class Deliverer:
    """Background delivery tasks in the server's loop; `drain()` waits for all of them."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        faults: Callable[[], Faults],
        now: Callable[[], float],
        *,
        blacklist_after: int = 10,
        timeout: float = 3.0,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.client = client
        self.faults = faults
        self.now = now
        self.blacklist_after = blacklist_after
        self.timeout = timeout
        self.attempts: list[Attempt] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Deliveries under way at once; the server's accounts share theirs with their one client.
        self._slots = slots if slots is not None else asyncio.Semaphore(DELIVERIES_AT_ONCE)

    def schedule(self, outgoing: Sequence[Outgoing]) -> None:
        faults = self.faults()
        batch = list(outgoing)
        if faults.reorder:
            faults.rng.shuffle(batch)
        for item in batch:
            copies = 2 if faults.chance(faults.duplicate) else 1
            for _ in range(copies):
                jitter = faults.rng.uniform(0, 0.05) if faults.reorder else 0.0
                task = asyncio.get_running_loop().create_task(self._send(item, jitter))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @staticmethod
    def _headers(token: str) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Verification-Token"] = token
        return headers

    async def _send(self, item: Outgoing, jitter: float) -> None:
        faults = self.faults()
        sub, envelope = item.subscription, item.envelope
        if faults.delay or jitter:
            await asyncio.sleep(faults.delay + jitter)
        if sub.status != "Active" or self.now() >= sub.expires_at:
            return
        record = (str(envelope["uuid"]), sub.id, str(envelope["event"]))
        if faults.chance(faults.drop):
            self.attempts.append(Attempt(*record, 0, "dropped"))
            return
        status = 0
        async with self._slots:
            try:
                response = await self.client.post(
                    sub.address,
                    content=orjson.dumps(envelope),
                    headers=self._headers(sub.verification_token),
                    timeout=self.timeout,
                )
                status = response.status_code
            except httpx.HTTPError as exc:
                log.debug("delivery failed", extra={"uuid": record[0], "error": repr(exc)})
        if 200 <= status < 300:
            sub.failures = 0
            self.attempts.append(Attempt(*record, status, "delivered"))
            return
        sub.failures += 1
        self.attempts.append(Attempt(*record, status, "failed"))
        if sub.failures >= self.blacklist_after:
            sub.blacklist(self.now(), f"{sub.failures} failed deliveries in a row")
