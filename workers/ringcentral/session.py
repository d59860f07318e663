"""One RingCentral request carried to a final answer, shared by every typed call.

Each request: wait for room in its rate-limit group (shared through Redis), take the shared
access token, send, feed the `X-Rate-Limit-*` headers back into the budget, then decide:
2xx → return it; 429 → penalise the group and wait it out (or raise RateLimited past the cap);
5xx, timeouts and connection errors → a few quick retries with jittered backoff; 401 → refresh the
token once and retry once; any other 4xx → a typed `ApiError` with RingCentral's `errorCode`.
The send time returned with each answer is the budget's grant time on Redis's clock, never this
host's: every process stamps its reads on the same clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import httpx
import pydantic
import redis.asyncio as aioredis

from events.settings import Settings
from workers.ringcentral.budget import Budget
from workers.ringcentral.errors import (
    ApiError,
    AuthError,
    InvalidResponse,
    NetworkError,
    RateLimited,
    ServerUnavailable,
)
from workers.ringcentral.resources import READ_AT, ErrorBody, IssuedToken
from workers.ringcentral.throttling import group_for
from workers.ringcentral.token import SharedToken

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=pydantic.BaseModel)
Params = list[tuple[str, str | int | float | bool | None]]

# A 5xx asking us to come back later than this is left to the job queue, not slept through.
MAX_SERVER_WAIT = 10.0
MAX_429_IN_A_ROW = 3


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every account's client in this process.

    Building one loads the CA bundle (~30 ms of CPU); a worker serving 400 accounts would otherwise
    spend seconds of its start-up, and of every credential update, doing it again per account.
    """
    return httpx.create_ssl_context()


class Session:
    """The budgeted, authenticated, retrying request loop behind `RingCentral`."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        *,
        transport: httpx.AsyncBaseTransport | None,
        max_wait: float,
        attempts: int,
        timeout: float,
        backoff: float,
        clock: Callable[[], float],
        on_refused: Callable[[AuthError], Awaitable[None]] | None = None,
    ) -> None:
        self._settings = settings
        # Told when the token endpoint refuses the JWT itself (the account's credentials fail).
        self.on_refused = on_refused
        self._max_wait = max_wait
        self._attempts = attempts
        self._backoff_base = backoff
        self._http = httpx.AsyncClient(
            base_url=settings.rc_server_url,
            transport=transport,
            verify=tls_context(),
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
        self.budget = Budget(settings, redis)
        self._token = SharedToken(settings, redis, self._login, clock=clock)

    def __repr__(self) -> str:
        return f"Session(server={self._settings.rc_server_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        basic: httpx.BasicAuth | None = None,
        allow: frozenset[int] = frozenset(),
    ) -> tuple[httpx.Response, datetime]:
        """Send until a final answer; return it with the time it was sent (Redis's clock, taken
        with its rate-limit budget), or raise typed."""
        group = group_for(method, path)
        failures = limited = 0
        refreshed = False
        while True:
            # Redis's clock, shared by every process, never this host's (see
            # workers.ringcentral.budget).
            grant = await self.budget.take(group, max_wait=self._max_wait)
            headers: dict[str, str] = {}
            token = ""
            if basic is None:
                token = await self._token.get()
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._http.request(
                    method, path, params=params, json=json, data=data, headers=headers, auth=basic
                )
            except httpx.TransportError as exc:
                failures += 1
                if failures >= self._attempts:
                    raise NetworkError(
                        f"{method} {path}: {type(exc).__name__} on {failures} attempts"
                    ) from exc
                await self._backoff(failures, method, path, type(exc).__name__)
                continue
            status = response.status_code
            await self.budget.observe(group, _limit_headers(response), counted=grant.remaining)
            log.debug("ringcentral", extra={"method": method, "path": path, "status": status})
            if status < 400 or status in allow:
                return response, grant.sent_at
            retry_after = _retry_after(response)
            if status == 429:
                limited += 1
                named = response.headers.get("x-rate-limit-group", group)
                ends = await self.budget.penalize(named, retry_after)
                if named.lower() != group:  # the group we wait on before resending
                    await self.budget.penalize(group, retry_after)
                if limited >= MAX_429_IN_A_ROW:
                    raise RateLimited(named.lower(), max(ends - time.time(), 0.0))
                continue  # the next take() waits out the penalty, or raises RateLimited
            if status >= 500:
                failures += 1
                wait = retry_after or 0.0
                if failures >= self._attempts or wait > MAX_SERVER_WAIT:
                    raise ServerUnavailable(
                        f"{method} {path}: HTTP {status} on {failures} attempts",
                        status=status,
                        retry_after=retry_after,
                    )
                await self._backoff(failures, method, path, f"HTTP {status}", at_least=wait)
                continue
            error = error_body(response)
            if status == 401 and basic is None and not refreshed:
                # OAU-128/OAU-129 (expired or revoked token): one fresh login, one more try.
                refreshed = True
                await self._token.invalidate(token)
                log.info("access token refused; refreshing", extra={"error_code": error.code})
                continue
            message = f"{method} {path}: HTTP {status} {error.code or ''} {error.text}".rstrip()
            kind = AuthError if status == 401 else ApiError
            raise kind(message, status=status, error_code=error.code)

    async def _backoff(
        self, failures: int, method: str, path: str, reason: str, *, at_least: float = 0.0
    ) -> None:
        delay = max(at_least, random.uniform(0.0, min(4.0, self._backoff_base * 2**failures)))
        log.warning(
            "ringcentral retry",
            extra={"method": method, "path": path, "reason": reason, "delay": round(delay, 3)},
        )
        await asyncio.sleep(delay)

    async def _login(self) -> IssuedToken:
        settings = self._settings
        secret = settings.rc_client_secret.get_secret_value()
        jwt = settings.rc_jwt.get_secret_value()
        if not (settings.rc_client_id and secret and jwt):
            raise AuthError(
                "RC_APP_CLIENT_ID, RC_APP_CLIENT_SECRET and RC_USER_JWT must all be set",
                status=0,
                error_code=None,
            )
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt}
        try:
            response, _ = await self.send(
                "POST",
                "/restapi/oauth/token",
                data=form,
                basic=httpx.BasicAuth(settings.rc_client_id, secret),
            )
        except ApiError as exc:
            fix = (
                f"`ringsync accounts update {settings.account}` gives it a new JWT"
                if settings.account
                else "check RC_APP_CLIENT_ID, RC_APP_CLIENT_SECRET and RC_USER_JWT"
            )
            refused = AuthError(
                f"RingCentral refused the app credentials or JWT ({exc}); {fix}",
                status=exc.status,
                error_code=exc.error_code,
            )
            # The token endpoint refusing the JWT itself (OAU-…) is not going to pass by.
            if self.on_refused is not None and (exc.error_code or "").startswith("OAU"):
                await self.on_refused(refused)
            raise refused from None
        return parse(IssuedToken, response)


def parse(
    model: type[Model], response: httpx.Response, *, read_at: datetime | None = None
) -> Model:
    """The body as `model`, or InvalidResponse naming where it differs (never its values).

    `read_at` stamps the model and every record in it (see `workers.ringcentral.resources.Read`).
    """
    context = None if read_at is None else {READ_AT: read_at}
    try:
        return model.model_validate_json(response.content, context=context)
    except pydantic.ValidationError as exc:
        where = ", ".join(".".join(str(part) for part in e["loc"]) for e in exc.errors()[:5])
        raise InvalidResponse(
            f"{response.request.method} {response.request.url.path}: "
            f"not a {model.__name__} ({exc.error_count()} errors at {where or 'body'})"
        ) from None


def error_body(response: httpx.Response) -> ErrorBody:
    """Whatever error shape came back; an empty one when the body is not JSON."""
    try:
        return ErrorBody.model_validate_json(response.content)
    except pydantic.ValidationError:
        return ErrorBody()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _limit_headers(response: httpx.Response) -> dict[str, str]:
    """The rate-limit headers, minus `Remaining` on a 429 (0 there only reflects the penalty)."""
    wanted = ["x-rate-limit-group", "x-rate-limit-limit", "x-rate-limit-window"]
    if response.status_code != 429:
        wanted.append("x-rate-limit-remaining")
    return {name: response.headers[name] for name in wanted if name in response.headers}
