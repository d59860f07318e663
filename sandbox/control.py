"""The control API under `/sandbox/...`: the World's control methods over HTTP (JSON), for the
demo, benchmarks and other processes. Not throttled, not authenticated, not in the call log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.gate import world_of
from sandbox.responses import json_response
from sandbox.world import UnknownUser, World

Action = Callable[[World, dict[str, Any], dict[str, str]], Any]


def _control(action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            return json_response({"error": "body is not JSON"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "body must be a JSON object"}, 400)
        world = world_of(request)
        try:
            result = action(world, body, dict(request.path_params))
            if isinstance(result, Awaitable):
                result = await result
        except UnknownUser as exc:
            return json_response({"error": f"no such user: {exc.args[0]}"}, 404)
        except KeyError as exc:
            return json_response({"error": f"not found: {exc.args[0]}"}, 404)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(result)

    return endpoint


def _bulk(world: World, body: dict[str, Any], _: dict[str, str]) -> Any:
    target = body["ids"] if "ids" in body else int(body["count"])
    return {"ids": world.bulk_update(target, **body.get("fields", {}))}


def _status(action: str) -> Action:
    def run(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
        method: Callable[..., Any] = getattr(world, action)
        return method(params["user_id"], **body)

    return run


def _delete_after_page(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    if "page" not in body:
        raise ValueError("body needs 'page': the list page after which to delete the user")
    return world.delete_after_page(params["user_id"], body["page"])


def _info(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    return {
        "url": world.base_url,
        "account_id": world.account_id,
        "owner_id": world.owner_id,
        "operator_id": world.operator_id,
        "client_id": world.credentials.client_id,
        "users": len(world.ordered()),
    }


async def _drain(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    await world.drain()
    return {"drained": True}


def _faults(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    faults = asdict(world.set_faults(**body))
    faults.pop("rng")
    return faults


def _blacklist(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    world.blacklist(params["subscription_id"], **body)
    return {"blacklisted": params["subscription_id"]}


def _advance(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    world.advance_clock(float(body["seconds"]))
    return {"now": world.clock.iso()}


def _shape(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    world.set_body_shape(body["shape"])
    return {"shape": body["shape"]}


def _deliveries(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    attempts = world.deliverer.attempts if world.deliverer else []
    return [asdict(a) for a in attempts]


def _write_failures(world: World, body: dict[str, Any], params: dict[str, str]) -> Any:
    """Make writes (PUT, bulk DELETE) of `ids` fail with `status` and `error_code`."""
    world.fail_writes([str(i) for i in body["ids"]], **{k: body[k] for k in body if k != "ids"})
    return {"failing": sorted(world.write_failures)}


def _route(path: str, action: Action, method: str = "POST") -> Route:
    return Route(f"/sandbox{path}", _control(action), methods=[method])


ROUTES = [
    _route("/info", _info, "GET"),
    _route("/seed", lambda w, b, p: {"ids": w.seed(int(b["n"]))}),
    _route("/users", lambda w, b, p: w.users(), "GET"),
    _route("/users", lambda w, b, p: w.user(w.create_user(**b))),
    _route("/users/bulk", _bulk),
    _route("/users/{user_id}", lambda w, b, p: w.user(p["user_id"]), "GET"),
    _route("/users/{user_id}", lambda w, b, p: w.update_user(p["user_id"], **b), "PATCH"),
    _route("/users/{user_id}", lambda w, b, p: {"deleted": w.delete(p["user_id"])}, "DELETE"),
    _route("/users/{user_id}/delete-after-page", _delete_after_page),
    _route("/users/{user_id}/roles", lambda w, b, p: w.assign_roles(p["user_id"], b["roles"])),
    _route("/users/{user_id}/admin", lambda w, b, p: w.set_admin(p["user_id"], b["admin"])),
    *[
        _route(f"/users/{{user_id}}/{a}", _status(a))
        for a in ("disable", "freeze", "enable", "unassign")
    ],
    _route("/owner", lambda w, b, p: w.user(w.add_owner(**b))),
    _route("/operator", lambda w, b, p: {"operator_id": w.set_operator(str(b["extension_id"]))}),
    _route("/write-failures", _write_failures),
    _route("/clock/advance", _advance),
    _route("/faults", _faults),
    _route("/body-shape", _shape),
    _route("/subscriptions/{subscription_id}/blacklist", _blacklist),
    _route("/drain", _drain),
    _route("/calls", lambda w, b, p: w.calls, "GET"),
    _route("/counters", lambda w, b, p: w.counters(), "GET"),
    _route("/deliveries", _deliveries, "GET"),
]
