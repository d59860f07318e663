"""The approval gate every proposal and decision goes through (CLI, `/v1`, the console, the
licence report): check, record with its `action.*` event, tell downstream, and queue the
execution of what was approved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from events.queue import ACTION_RUN
from workers.actions.action import Action, snapshot_of, subject_of
from workers.actions.decide import ActionState, Kind, Protection, Refuse, Run, preflight
from workers.actions.protection import protection
from workers.actions.store import ActionStore, Moved, NotFound
from workers.context import Deps
from workers.delivery.outbox import announce
from workers.store import tables


@dataclass(frozen=True)
class Preview:
    """What a proposal would do now (`--dry-run`): the user as mirrored, and the steps or the
    reason it would be refused. Nothing is recorded."""

    account_id: str
    extension_id: str
    kind: Kind
    user: dict[str, Any]
    steps: tuple[str, ...]
    refused: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "account_id": self.account_id,
            "extension_id": self.extension_id,
            "kind": str(self.kind),
            "steps": list(self.steps),
            "refused": self.refused,
            "user": self.user,
        }


async def find_extension(d: Deps, account_id: str, email: str) -> str:
    """The mirrored user's extension id for `email` (case-insensitive; not deprovisioned)."""
    users = tables.users.c
    query = select(users.extension_id).where(
        and_(
            users.account_id == account_id,
            func.lower(users.email) == email.strip().lower(),
            users.state != "deprovisioned",
        )
    )
    async with d.store.engine.connect() as conn:
        found = [str(i) for i in (await conn.execute(query)).scalars()]
    if not found:
        raise NotFound(f"no user with email {email} in account {account_id}")
    if len(found) > 1:
        raise NotFound(f"several users have email {email}: name one with its extension id")
    return found[0]


async def preview(d: Deps, kind: Kind, extension_id: str) -> Preview:
    """The preflight of a proposal, recording nothing."""
    account_id = await d.account_id()
    row = await d.store.get_user(account_id, extension_id)
    if row is None:
        raise NotFound(f"no user {extension_id} in account {account_id}")
    check = preflight(kind, subject_of(extension_id, row), await protection(d))
    return Preview(
        account_id=account_id,
        extension_id=extension_id,
        kind=kind,
        user=snapshot_of(row),
        steps=tuple(str(s) for s in check.steps) if isinstance(check, Run) else (),
        refused=check.reason if isinstance(check, Refuse) else None,
    )


async def propose(
    d: Deps,
    kind: Kind,
    extension_id: str,
    *,
    reason: str,
    by: str,
    facts: Protection | None = None,
) -> Action:
    """Record a proposal; a policy may approve it at once (then its execution is queued).

    Raises `NotFound` (no such mirrored user) or `Refused` (protected, not a user, not in the
    kind's starting state). Bulk callers pass `facts` (`protection(d)`) to ask RingCentral once.
    """
    moved = await ActionStore(d.store).propose(
        await d.account_id(),
        extension_id,
        kind,
        reason=reason,
        by=by,
        protection=facts or await protection(d),
        auto_approve=frozenset(Kind(k) for k in d.settings.actions_auto_approve),
    )
    return await _after(d, moved)


async def approve(d: Deps, action_id: str, by: str) -> Action:
    """A person approves (`SameApprover` when it is the proposer, `Finished` when already
    decided); the execution is queued."""
    return await _after(d, await ActionStore(d.store).approve(action_id, by))


async def reject(d: Deps, action_id: str, by: str) -> Action:
    return await _after(d, await ActionStore(d.store).reject(action_id, by))


async def cancel(d: Deps, action_id: str, by: str) -> Action:
    return await _after(d, await ActionStore(d.store).cancel(action_id, by))


async def _after(d: Deps, moved: Moved) -> Action:
    await announce(d, moved.rows)
    if moved.action.state is ActionState.APPROVED:
        await queue_run(d, moved.action)
    return moved.action


async def queue_run(d: Deps, action: Action, *, defer_by: float = 0.0) -> None:
    """Queue the execution of `action` (`d` acts for its account). One job per action and
    second it is due: the sweep queues no duplicate of one already queued, and a running job
    re-queueing itself for later is never swallowed by its own id."""
    due = int(time.time() + defer_by)
    job_id = d.settings.root_key("action", action.id, str(due) if defer_by else "now")
    await d.queue.enqueue(ACTION_RUN, action.id, job_id=job_id, defer_by=defer_by)
