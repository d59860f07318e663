"""The console's routes: login and logout, the dashboard, an account's users, one user, and the
forms that change something (approve a held plan, approve or reject a proposed action, replay
dead letters).

A page without a session redirects to the login page; a POST without a session or without its
session's CSRF token is refused with 403 and nothing is done. Work is only queued, as through
`/v1`: a running `ringsync worker` carries it out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from api.console.facts import dashboard_facts, utcnow
from api.console.people import user_events, user_list
from api.console.session import CSRF_FIELD, Session, Sessions, csrf_ok, is_https, token_matches
from api.console.views import render
from api.state import ApiState, api_state
from events.queue import RESYNC
from workers.accounts.registry import acting_for
from workers.actions import gate
from workers.actions.store import ActionError, ActionStore, Finished, SameApprover
from workers.context import Deps
from workers.replay import replay_dead_letters
from workers.resync.safeguard import PlanRefused, approvable
from workers.resync.store import find_plan, pending_plans

log = logging.getLogger(__name__)

_FORM_LIMIT: Final = 16_384
_NAME: Final = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
_NUMBER: Final = re.compile(r"^[0-9]{1,32}$")
NOTICES: Final = {
    "approved": "Approval queued: a worker applies the plan's deprovisionings, each confirmed "
    "by its own read.",
    "replayed": "Dead letters queued again.",
    "action-approved": "Action approved: a worker re-reads the user, then carries it out.",
    "action-rejected": "Action rejected.",
}

Page = Callable[[Request, ApiState, Session], Awaitable[Response]]
Form = Callable[[Request, ApiState, Session, dict[str, str]], Awaitable[Response]]


def sessions(request: Request) -> Sessions:
    state = api_state(request)
    return Sessions(state.settings, state.redis)


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form (each field's first value); None once it is too large."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page that needs a session: without one, the login page."""

    async def run(request: Request) -> Response:
        session = await sessions(request).find(request)
        if session is None:
            return RedirectResponse("/login", 303)
        return await handler(request, api_state(request), session)

    return run


def form(handler: Form) -> Callable[[Request], Awaitable[Response]]:
    """A state-changing form: refused (403) without a session and its CSRF token."""

    async def run(request: Request) -> Response:
        session = await sessions(request).find(request)
        fields = await read_form(request)
        if fields is None:
            return render(request, "error.html", {"message": "The form is too large."}, 413)
        if session is None or not csrf_ok(session, fields.get(CSRF_FIELD)):
            message = "Missing or wrong CSRF token (or no session): reload the page and retry."
            return render(request, "error.html", {"message": message}, 403)
        state = api_state(request)
        response = await handler(request, state, session, fields)
        # What needs a look may have changed: the next page reads it afresh.
        state.overview.forget()
        return response

    return run


async def login_page(request: Request) -> Response:
    if await sessions(request).find(request) is not None:
        return RedirectResponse("/", 303)
    return render(request, "login.html", {"error": None})


async def login(request: Request) -> Response:
    # No CSRF token here: there is no session yet, and a forged login would need the API token.
    fields = await read_form(request) or {}
    if not token_matches(api_state(request).settings, fields.get("token", "")):
        # What was typed is never logged: it may be a real token for something else.
        log.warning("console login refused", extra={"client": _client(request)})
        return render(request, "login.html", {"error": "Wrong token."}, 401)
    log.info("console login", extra={"client": _client(request)})
    response = RedirectResponse("/", 303)
    await sessions(request).open(response, secure=is_https(request))
    return response


async def logout(
    request: Request, state: ApiState, session: Session, _: dict[str, str]
) -> Response:
    response = RedirectResponse("/login", 303)
    await sessions(request).end(session, response, secure=is_https(request))
    return response


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _number(request: Request, name: str = "page") -> int:
    value = request.query_params.get(name, "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


async def dashboard(request: Request, state: ApiState, session: Session) -> Response:
    now = utcnow()
    query = request.query_params.get("q", "")[:100]
    page, deployment = await dashboard_facts(state, query, _number(request), now)
    context = {
        "session": session,
        "now": now,
        "page": page,
        "deployment": deployment,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        "refresh": True,
    }
    return render(request, "dashboard.html", context)


async def account_users(request: Request, state: ApiState, session: Session) -> Response:
    account_id = request.path_params["account_id"]
    query = request.query_params.get("q", "")[:100]
    found = await user_list(state.engine, account_id, query, _number(request))
    context = {"session": session, "account_id": account_id, "list": found, "now": utcnow()}
    return render(request, "users.html", context)


async def user(request: Request, state: ApiState, session: Session) -> Response:
    account_id = request.path_params["account_id"]
    extension_id = request.path_params["extension_id"]
    row = await state.store.get_user(account_id, extension_id)
    if row is None:
        return render(request, "error.html", {"message": "No such user in the mirror."}, 404)
    context = {
        "session": session,
        "account_id": account_id,
        "extension_id": extension_id,
        "user": row,
        "history": list(reversed(await state.store.list_changes(account_id, extension_id))),
        "events": await user_events(state.engine, account_id, extension_id),
        "actions": await ActionStore(state.store).list(
            account_id=account_id, extension_id=extension_id
        ),
        "now": utcnow(),
    }
    return render(request, "user.html", context)


async def approve_plan(
    request: Request, state: ApiState, session: Session, fields: dict[str, str]
) -> Response:
    """Queue the approval of one held resync plan, naming who approved it."""
    by = fields.get("by", "").strip()
    if not _NAME.match(by):
        message = "Name the approver (1 to 100 characters) to approve a plan."
        return render(request, "error.html", {"message": message}, 422)
    plan_id = request.path_params["plan_id"]
    plan = await find_plan(state.store, plan_id)
    try:
        account_id = plan.account_id if plan is not None else ""
        approvable(plan_id, plan, account_id, await pending_plans(state.store, account_id))
    except PlanRefused as exc:
        return render(request, "error.html", {"message": str(exc)}, 409)
    assert plan is not None
    scope: dict[str, Any] = {}
    if plan.account_id != await state.default_account():
        scope["account"] = plan.account_id
    await state.deps.queue.enqueue(
        RESYNC,
        f"console: approved by {by}",
        job_id=state.settings.key("resync", "console", plan_id),
        approve=plan_id,
        **scope,
    )
    log.info("resync plan approved in the console", extra={"plan": plan_id, "by": by})
    return _back("approved", plan.account_id)


def deciding(verb: str) -> Form:
    """Approve or reject a proposed action in the approver's name (never the proposer's)."""
    decide = gate.approve if verb == "approve" else gate.reject

    async def handler(
        request: Request, state: ApiState, session: Session, fields: dict[str, str]
    ) -> Response:
        return await _decide(request, state, fields, verb, decide)

    return handler


async def _decide(
    request: Request,
    state: ApiState,
    fields: dict[str, str],
    verb: str,
    decide: Callable[[Deps, str, str], Awaitable[object]],
) -> Response:
    by = fields.get("by", "").strip()
    if not _NAME.match(by):
        message = "Name the approver (1 to 100 characters) to decide an action."
        return render(request, "error.html", {"message": message}, 422)
    action_id = request.path_params["action_id"]
    found = await ActionStore(state.store).get(action_id)
    if found is None:
        return render(request, "error.html", {"message": f"No action {action_id}."}, 404)
    async with acting_for(state.deps, found.account_id) as d:
        if d is None:
            message = f"Account {found.account_id} is not mirrored."
            return render(request, "error.html", {"message": message}, 404)
        try:
            await decide(d, action_id, by)
        except ActionError as exc:
            status = 422
            if isinstance(exc, SameApprover | Finished):
                status = 403 if isinstance(exc, SameApprover) else 409
            return render(request, "error.html", {"message": str(exc)}, status)
    log.info("action decided in the console", extra={"action": action_id, "verb": verb, "by": by})
    return _back(f"action-{verb}d", found.account_id)


async def replay(
    request: Request, state: ApiState, session: Session, fields: dict[str, str]
) -> Response:
    """Queue every dead letter again (as `ringsync replay --dead-letters`)."""
    done = await replay_dead_letters(state.deps, job=None, dry_run=False)
    log.info("dead letters replayed in the console", extra={"dead_letters": done.dead_letters})
    return _back("replayed")


def _back(notice: str, account_id: str | None = None) -> Response:
    anchor = f"#account-{account_id}" if account_id and _NUMBER.match(account_id) else ""
    return RedirectResponse(f"/?{urlencode({'notice': notice})}{anchor}", 303)


ROUTES: Final = [
    Route("/", page(dashboard), methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", form(logout), methods=["POST"]),
    Route("/accounts/{account_id}", page(account_users), methods=["GET"]),
    Route("/accounts/{account_id}/users/{extension_id}", page(user), methods=["GET"]),
    Route("/plans/{plan_id}/approve", form(approve_plan), methods=["POST"]),
    Route("/actions/{action_id}/approve", form(deciding("approve")), methods=["POST"]),
    Route("/actions/{action_id}/reject", form(deciding("reject")), methods=["POST"]),
    Route("/dead-letters/replay", form(replay), methods=["POST"]),
]
