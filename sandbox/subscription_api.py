"""`/restapi/v1.0/subscription`: create (after the Validation-Token handshake), list, get,
update (filters and expiresIn only), renew, delete. Groups per the spec: reads and renew Light,
create/update/delete Medium."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.delivery import HandshakeFailed, handshake
from sandbox.gate import gated
from sandbox.responses import invalid, json_object, json_response, missing, not_found, rc_error
from sandbox.subscriptions import (
    DEFAULT_EXPIRES_IN,
    MAX_EXPIRES_IN,
    MAX_PER_APP,
    Subscription,
    normalise_filter,
)
from sandbox.world import World


def _filters(body: dict[str, Any], world: World) -> list[str] | None:
    filters = body.get("eventFilters")
    if not isinstance(filters, list) or not filters:
        return None
    if not all(isinstance(f, str) and f.strip() for f in filters):
        return None
    return [normalise_filter(f, world.account_id, world.owner_id) for f in filters]


def _expires_in(body: dict[str, Any], default: int) -> int | None:
    value = body.get("expiresIn", default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        return None
    return min(value, MAX_EXPIRES_IN)


def _render(world: World, sub: Subscription) -> Response:
    return json_response(sub.render(world.base_url, world.clock.iso, world.clock.now()))


def _unparsable() -> Response:
    return rc_error(400, "CMN-103", "JSON can't be parsed.")


@gated("Medium")
async def create(request: Request, world: World) -> Response:
    body = await json_object(request)
    if body is None:
        return _unparsable()
    filters = _filters(body, world)
    if filters is None:
        return missing("eventFilters") if "eventFilters" not in body else invalid("eventFilters")
    mode = body.get("deliveryMode")
    if not isinstance(mode, dict):
        return missing("deliveryMode")
    if mode.get("transportType") != "WebHook":
        return invalid("deliveryMode.transportType")
    address = mode.get("address")
    if not isinstance(address, str) or not address.startswith(("http://", "https://")):
        return invalid("deliveryMode.address")
    token = mode.get("verificationToken", "")
    if not isinstance(token, str) or len(token) > 64:
        return invalid("deliveryMode.verificationToken")
    expires_in = _expires_in(body, DEFAULT_EXPIRES_IN)
    if expires_in is None:
        return invalid("expiresIn")
    if len(world.subscriptions) >= MAX_PER_APP:
        return rc_error(403, "SUB-406", "Maximum number of subscriptions is reached")
    if world.deliverer is not None:
        try:
            await handshake(world.deliverer.client, address)
        except HandshakeFailed as exc:
            return rc_error(400, "SUB-525", str(exc))
    now = world.clock.now()
    sub = Subscription(
        id=str(uuid.uuid4()),
        event_filters=filters,
        address=address,
        verification_token=token,
        expires_in=expires_in,
        created_at=now,
        expires_at=now + expires_in,
    )
    world.subscriptions[sub.id] = sub
    return _render(world, sub)


@gated("Light")
async def listing(request: Request, world: World) -> Response:
    world.tick()
    records = [
        s.render(world.base_url, world.clock.iso, world.clock.now())
        for s in world.subscriptions.values()
    ]
    return json_response({"uri": f"{world.base_url}/restapi/v1.0/subscription", "records": records})


@gated("Light")
async def read(request: Request, world: World) -> Response:
    sub = world.subscription(request.path_params["subscription_id"])
    return not_found("subscriptionId") if sub is None else _render(world, sub)


@gated("Medium")
async def update(request: Request, world: World) -> Response:
    sub = world.subscription(request.path_params["subscription_id"])
    if sub is None:
        return not_found("subscriptionId")
    body = await json_object(request)
    if body is None:
        return _unparsable()
    filters = _filters(body, world)
    if filters is None:
        return missing("eventFilters") if "eventFilters" not in body else invalid("eventFilters")
    expires_in = _expires_in(body, sub.expires_in)
    if expires_in is None:
        return invalid("expiresIn")
    sub.event_filters = filters
    sub.expires_in = expires_in
    sub.expires_at = world.clock.now() + expires_in
    sub.reminder_slot = -1
    return _render(world, sub)


@gated("Light")
async def renew(request: Request, world: World) -> Response:
    sub = world.subscription(request.path_params["subscription_id"])
    if sub is None:
        return not_found("subscriptionId")
    sub.expires_at = world.clock.now() + sub.expires_in
    sub.reminder_slot = -1
    return _render(world, sub)


@gated("Medium")
async def delete(request: Request, world: World) -> Response:
    sub = world.subscription(request.path_params["subscription_id"])
    if sub is None:
        return not_found("subscriptionId")
    del world.subscriptions[sub.id]
    return Response(status_code=204)


ROUTES = [
    Route("/restapi/v1.0/subscription", create, methods=["POST"]),
    Route("/restapi/v1.0/subscription", listing, methods=["GET"]),
    Route("/restapi/v1.0/subscription/{subscription_id}", read, methods=["GET"]),
    Route("/restapi/v1.0/subscription/{subscription_id}", update, methods=["PUT"]),
    Route("/restapi/v1.0/subscription/{subscription_id}", delete, methods=["DELETE"]),
    Route("/restapi/v1.0/subscription/{subscription_id}/renew", renew, methods=["POST"]),
]
