"""What every API call passes before its handler: the rate limit of its group, injected faults,
the bearer token; and what it leaves behind: the rate-limit headers and a call-log entry.

Each handler declares its group as the spec's `x-throttling-group` for that path and method.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from sandbox.calls import Call
from sandbox.responses import rc_error, scim_error
from sandbox.world import World

Handler = Callable[[Request, World], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Auth = Literal["bearer", "scim", "none"]


def world_of(request: Request) -> World:
    world: World = request.app.state.world
    return world


def bearer(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def gated(group: str, auth: Auth = "bearer") -> Callable[[Handler], Endpoint]:
    """Wrap a handler with RingCentral's throttling, the sandbox's faults, and token checks."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            world = world_of(request)
            decision = world.limiter.check(group)
            if not decision.allowed:
                response = _throttled(auth)
            else:
                response = await _admit(request, world, handler, auth)
                if world.before_reply is not None:
                    # Tests hold a reply whose content is already decided (a read in flight).
                    await world.before_reply(request.url.path)
            response.headers.update(decision.headers())
            world.log.record(
                Call(
                    time=world.clock.now(),
                    method=request.method,
                    path=request.url.path,
                    group=decision.group,
                    status=response.status_code,
                    throttled=not decision.allowed,
                )
            )
            return response

        return endpoint

    return wrap


async def _admit(request: Request, world: World, handler: Handler, auth: Auth) -> Response:
    faults = world.faults
    if faults.latency:
        await asyncio.sleep(faults.latency)
    if faults.chance(faults.error_rate):
        if auth == "scim":
            return scim_error(500, "Internal Server Error")
        return rc_error(500, "CMN-203", "Internal Server Error")
    refused = faults.refusal(request.method, request.url.path)
    if refused is not None:
        return _refused(refused, auth)
    if auth != "none" and not world.tokens.live(bearer(request)):
        if auth == "scim":
            return scim_error(401, "Access token is missing, invalid or expired")
        return rc_error(401, "OAU-128", "Invalid or expired access token")
    return await handler(request, world)


def _refused(status: int, auth: Auth) -> Response:
    if auth == "scim":
        return scim_error(status, "Refused on command")
    code = "CMN-203" if status >= 500 else "CMN-102" if status == 404 else "CMN-101"
    return rc_error(status, code, "Refused on command")


def _throttled(auth: Auth) -> Response:
    if auth == "scim":
        return scim_error(429, "Request rate exceeded")
    return rc_error(429, "CMN-301", "Request rate exceeded")
