"""`/v1`: JSON for automation (bearer RINGSYNC_API_TOKEN). Lists are JSON arrays; errors are
`{"error", "reason"}` with 400/404/409/422, never a 500 for bad input. Work is only queued: a
running `ringsync worker` carries it out, as after `ringsync resync` or `ringsync replay`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.state import ApiState, api_state
from events.queue import RESYNC
from workers.accounts.registry import acting_for
from workers.accounts.store import AccountStore
from workers.actions import gate
from workers.actions.action import Action
from workers.actions.decide import ActionState, Kind
from workers.actions.gate import find_extension
from workers.actions.store import (
    ActionError,
    ActionStore,
    Finished,
    NotFound,
    SameApprover,
)
from workers.context import Deps
from workers.delivery.outbox import replay_outbox
from workers.lifecycle import State
from workers.replay import replay_dead_letters, replay_users, stored_notifications
from workers.resync.safeguard import PlanRefused, approvable
from workers.resync.store import find_plan, pending_plans
from workers.ringcentral.errors import RingCentralError
from workers.status import account_rows, build_report
from workers.store.listing import user_json

_JSON: Final = "application/json"
_PLAN_ID: Final = r"^[A-Za-z0-9_-]{1,64}$"


def reply(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=_JSON)


def refuse(status: int, error: str, reason: str) -> Response:
    return reply({"error": error, "reason": reason}, status)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResyncRequest(_Body):
    approve: str | None = Field(None, pattern=_PLAN_ID, description="a held plan's id")


class ProposeRequest(_Body):
    """A proposal: the user by `extension_id` or `email`; `account_id` while several exist."""

    kind: Kind
    extension_id: str | None = Field(None, pattern=r"^[0-9]{1,32}$")
    email: str | None = Field(None, min_length=3, max_length=320)
    reason: str = Field(min_length=1, max_length=1000)
    by: str = Field(min_length=1, max_length=200)
    account_id: str | None = Field(None, pattern=r"^[0-9]{1,32}$")

    @model_validator(mode="after")
    def _one_user(self) -> ProposeRequest:
        if (self.extension_id is None) == (self.email is None):
            raise ValueError("name the user by exactly one of extension_id or email")
        if not self.reason.strip() or not self.by.strip():
            raise ValueError("reason and by must not be blank")
        return self


class DecideRequest(_Body):
    by: str = Field(min_length=1, max_length=200, description="who decides")

    @model_validator(mode="after")
    def _named(self) -> DecideRequest:
        if not self.by.strip():
            raise ValueError("by must not be blank")
        return self


class ReplayRequest(_Body):
    """One of `extension`; `since` (with `until`, `type`, `extension`); `dead_letters`; `outbox`."""

    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    extension: str | None = Field(None, pattern=r"^[0-9]{1,32}$")
    dead_letters: bool = False
    outbox: bool = False
    type: str | None = Field(None, max_length=64)
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_mode(self) -> ReplayRequest:
        if not (self.since or self.extension or self.dead_letters or self.outbox):
            raise ValueError("one of since, extension, dead_letters or outbox is required")
        if self.dead_letters and (self.outbox or self.since or self.extension):
            raise ValueError("dead_letters is used alone (with type and dry_run)")
        if self.until is not None and (self.since is None or self.until <= self.since):
            raise ValueError("until needs an earlier since")
        return self


async def _body(request: Request, model: type[_Body]) -> _Body | Response:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return refuse(422, "invalid", f"{where}: {first['msg']}"[:200])


async def accounts(request: Request) -> Response:
    """Every account, as `ringsync accounts list --json` prints them."""
    return reply(await account_rows(api_state(request).store))


async def status(request: Request) -> Response:
    state = api_state(request)
    return reply(await build_report(state.settings, state.redis, state.store))


async def users(request: Request) -> Response:
    wanted = request.query_params.get("state")
    if wanted is not None and wanted not in {s.value for s in State}:
        known = ", ".join(s.value for s in State)
        return refuse(422, "invalid", f"state must be one of {known}")
    account = request.query_params.get("account_id")
    found = await api_state(request).store.list_users(state=wanted, account_id=account)
    return reply([user_json(user) for user in found])


async def resync(request: Request) -> Response:
    body = await _body(request, ResyncRequest)
    if isinstance(body, Response):
        return body
    assert isinstance(body, ResyncRequest)
    state = api_state(request)
    if body.approve is not None:
        account = await state.default_account()
        try:
            approvable(
                body.approve,
                await find_plan(state.store, body.approve),
                account or "",
                await pending_plans(state.store, account),
            )
        except PlanRefused as exc:
            return refuse(409, "refused", str(exc))
    job_id = state.settings.key("resync", "api", body.approve or "full")
    queued = await state.deps.queue.enqueue(RESYNC, "api", job_id=job_id, approve=body.approve)
    what = f"approval of plan {body.approve}" if body.approve else "full resync"
    return reply({"queued": queued, "what": what, "job_id": job_id}, 202)


async def replay(request: Request) -> Response:
    body = await _body(request, ReplayRequest)
    if isinstance(body, Response):
        return body
    assert isinstance(body, ReplayRequest)
    d = api_state(request).deps
    if body.outbox:
        count = await replay_outbox(
            d,
            since=body.since,
            type=body.type,
            extension_id=body.extension,
            endpoint=None,
            dry_run=body.dry_run,
        )
        return reply({"deliveries": count, "dry_run": body.dry_run}, 202)
    if body.dead_letters:
        done = await replay_dead_letters(d, job=body.type, dry_run=body.dry_run)
        answer = {"dead_letters": done.dead_letters, "skipped": done.skipped}
        return reply({**answer, "dry_run": body.dry_run}, 202)
    notifications = 0
    ids = [body.extension] if body.extension else []
    if body.since is not None:
        notifications, ids = await stored_notifications(d, body.since, body.until, body.type)
        if body.extension is not None:
            ids = [i for i in ids if i == body.extension]
    if body.dry_run:
        return reply({"users": len(ids), "notifications": notifications, "dry_run": True}, 202)
    cause = f"replay:{_iso(body.since) or body.extension}"
    scheduled = await replay_users(d, ids, cause)
    return reply({"users": scheduled, "notifications": notifications, "dry_run": False}, 202)


async def actions(request: Request) -> Response:
    wanted = request.query_params.get("state")
    if wanted is not None and wanted not in {s.value for s in ActionState}:
        known = ", ".join(s.value for s in ActionState)
        return refuse(422, "invalid", f"state must be one of {known}")
    found = await ActionStore(api_state(request).store).list(
        account_id=request.query_params.get("account_id"),
        state=ActionState(wanted) if wanted else None,
    )
    return reply([action.as_json() for action in found])


async def propose(request: Request) -> Response:
    body = await _body(request, ProposeRequest)
    if isinstance(body, Response):
        return body
    assert isinstance(body, ProposeRequest)
    try:
        action = await _propose(api_state(request), body)
    except ActionError as exc:
        return _refusal(exc)
    except RingCentralError as exc:  # the protection read: RingCentral is away or refuses us
        return refuse(503, "unavailable", f"RingCentral: {exc}"[:200])
    if isinstance(action, Response):
        return action
    return reply(action.as_json(), 201)


async def _propose(state: ApiState, body: ProposeRequest) -> Action | Response:
    account_id = body.account_id
    if account_id is None:
        stored = [a for a in await AccountStore(state.store).list() if not a.is_default]
        if stored:
            return refuse(422, "invalid", "account_id is required while several accounts exist")
        account_id = await state.deps.account_id()
    async with acting_for(state.deps, account_id) as d:
        if d is None:
            return refuse(404, "not_found", f"no account {account_id}")
        extension_id = body.extension_id or await find_extension(d, account_id, body.email or "")
        return await gate.propose(
            d, body.kind, extension_id, reason=body.reason.strip(), by=body.by.strip()
        )


Verb = Callable[[Deps, str, str], Awaitable[Action]]


def _deciding(verb: Verb) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await decide(request, verb)

    return endpoint


async def decide(request: Request, verb: Verb) -> Response:
    body = await _body(request, DecideRequest)
    if isinstance(body, Response):
        return body
    assert isinstance(body, DecideRequest)
    state = api_state(request)
    action_id = request.path_params["action_id"]
    found = await ActionStore(state.store).get(action_id)
    if found is None:
        return refuse(404, "not_found", f"no action {action_id}")
    async with acting_for(state.deps, found.account_id) as d:
        if d is None:
            return refuse(404, "not_found", f"no account {found.account_id}")
        try:
            action = await verb(d, action_id, body.by.strip())
        except ActionError as exc:
            return _refusal(exc)
    return reply(action.as_json())


def _refusal(exc: ActionError) -> Response:
    """An approver who proposed → 403; a decided action → 409; no such user → 404; a user who
    may not be acted on → 422."""
    if isinstance(exc, SameApprover):
        return refuse(403, "forbidden", str(exc))
    if isinstance(exc, Finished):
        return refuse(409, "conflict", str(exc))
    if isinstance(exc, NotFound):
        return refuse(404, "not_found", str(exc))
    return refuse(422, "refused", str(exc))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


ROUTES: Final = [
    Route("/accounts", accounts, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/users", users, methods=["GET"]),
    Route("/resync", resync, methods=["POST"]),
    Route("/replay", replay, methods=["POST"]),
    Route("/actions", actions, methods=["GET"]),
    Route("/actions", propose, methods=["POST"]),
    Route("/actions/{action_id}/approve", _deciding(gate.approve), methods=["POST"]),
    Route("/actions/{action_id}/reject", _deciding(gate.reject), methods=["POST"]),
]
