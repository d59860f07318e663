"""SQL for actions: propose, decide (approve, reject, cancel), claim for execution, finish, list.

Every state change writes its `action.*` outbox event in the same transaction, under the user's
write lock and with the user's next sequence number, so downstream hears an action's steps and
the `user.*` events they cause in one order per user. Moves are compare-and-set on `state`:
two deciders, two workers, or a retried job never move one action twice.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from workers.actions.action import Action, from_row, snapshot_of, subject_of
from workers.actions.audit import write_event
from workers.actions.decide import (
    AUTO_APPROVABLE,
    FINISHED,
    POLICY,
    ActionState,
    Kind,
    Protection,
    Refuse,
    may_approve,
    preflight,
    reserved,
    waiting,
)
from workers.store import tables
from workers.store.engine import lock_users, write_transaction
from workers.store.identity import OutboxRow, Store
from workers.store.mirror import select_users

_a = tables.actions
# The hourly cap's key in the per-user advisory lock space: one claimer per account at a time.
_CAP_LOCK: Final = "#actions"
HOUR: Final = timedelta(hours=1)
# States in which an action may still write: a user has at most one action in them.
OPEN: Final = (ActionState.PROPOSED, ActionState.APPROVED, ActionState.RUNNING)


class ActionError(Exception):
    """An action request refused; `str()` is the one-line reason for the caller."""


class NotFound(ActionError):
    """No such action (or no such user to act on)."""


class SameApprover(ActionError):
    """The approver is the proposer."""


class Finished(ActionError):
    """The action was already decided or finished: nothing changes."""


class BadName(ActionError):
    """A blank name, or "policy" given by a caller (it names the written policy only)."""


def check_name(by: str) -> None:
    """Refuse a blank or reserved proposer or decider name."""
    if not by.strip():
        raise BadName("a person's name is required (by must not be blank)")
    if reserved(by):
        raise BadName(f'"{POLICY}" is reserved for the written policy: give a person\'s name')


class Refused(ActionError):
    """The user may not be acted on (protected, not a user, not in the starting state)."""


@dataclass(frozen=True)
class Moved:
    """An action after a move, and the outbox rows the move wrote (to announce)."""

    action: Action
    rows: list[OutboxRow]


def _now() -> datetime:
    return datetime.now(UTC)


class ActionStore:
    """Actions in the identity store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._engine = store.engine

    async def get(self, action_id: str) -> Action | None:
        async with self._engine.connect() as conn:
            found = (await conn.execute(select(_a).where(_a.c.id == action_id))).mappings().first()
        return from_row(found) if found is not None else None

    async def list(
        self,
        *,
        account_id: str | None = None,
        state: ActionState | None = None,
        extension_id: str | None = None,
    ) -> list[Action]:
        """Actions, oldest first."""
        query = select(_a).order_by(_a.c.created_at, _a.c.id)
        if account_id is not None:
            query = query.where(_a.c.account_id == account_id)
        if state is not None:
            query = query.where(_a.c.state == str(state))
        if extension_id is not None:
            query = query.where(_a.c.extension_id == extension_id)
        async with self._engine.connect() as conn:
            return [from_row(m) for m in (await conn.execute(query)).mappings()]

    async def propose(
        self,
        account_id: str,
        extension_id: str,
        kind: Kind,
        *,
        reason: str,
        by: str,
        protection: Protection,
        auto_approve: frozenset[Kind] = frozenset(),
    ) -> Moved:
        """Record a proposal (`action.proposed`), approved at once by policy for the kinds
        `auto_approve` names (suspends only; `action.approved`, `approved_by: "policy"`).

        Raises `NotFound` for a user the mirror does not hold, `Refused` for one that may not
        be acted on as mirrored now or already has an open action, `BadName` for a blank or
        reserved `by`."""
        check_name(by)
        now = _now()
        async with write_transaction(self._engine) as conn:
            await conn.run_sync(lock_users, account_id, [extension_id])
            row = (await conn.run_sync(select_users, account_id, [extension_id])).get(extension_id)
            if row is None:
                raise NotFound(f"no user {extension_id} in account {account_id}")
            check = preflight(kind, subject_of(extension_id, row), protection)
            if isinstance(check, Refuse):
                raise Refused(f"extension {extension_id}: {check.reason}")
            # One open action a user (checked under the user's lock): two would race to write.
            open_one = await conn.execute(
                select(_a.c.id, _a.c.kind, _a.c.state).where(
                    _a.c.account_id == account_id,
                    _a.c.extension_id == extension_id,
                    _a.c.state.in_([str(s) for s in OPEN]),
                )
            )
            other = open_one.first()
            if other is not None:
                raise Refused(
                    f"extension {extension_id}: action {other.id} ({other.kind}, {other.state}) "
                    "is still open; decide or cancel it first"
                )
            action_id = str(uuid.uuid4())
            await conn.execute(
                _a.insert().values(
                    id=action_id,
                    account_id=account_id,
                    extension_id=extension_id,
                    kind=str(kind),
                    state=str(ActionState.PROPOSED),
                    reason=reason,
                    proposed_by=by,
                    created_at=now,
                    snapshot=snapshot_of(row),
                )
            )
            rows = [await write_event(conn, await _select(conn, action_id), None, now)]
            if kind in auto_approve and kind in AUTO_APPROVABLE:
                moved = await _move(
                    conn,
                    action_id,
                    ActionState.PROPOSED,
                    ActionState.APPROVED,
                    approved_by=POLICY,
                    decided_by=POLICY,
                    decided_at=now,
                )
                assert moved  # the row was inserted by this transaction
                rows.append(
                    await write_event(
                        conn, await _select(conn, action_id), ActionState.PROPOSED, now
                    )
                )
            action = await _select(conn, action_id)
        return Moved(action, rows)

    async def approve(self, action_id: str, by: str) -> Moved:
        """A person approves (`action.approved`). Raises `SameApprover` when `by` proposed it,
        `Finished` when it is no longer proposed."""
        return await self._decide(action_id, by, ActionState.APPROVED)

    async def reject(self, action_id: str, by: str) -> Moved:
        """A person rejects a proposal (`action.rejected`)."""
        return await self._decide(action_id, by, ActionState.REJECTED)

    async def cancel(self, action_id: str, by: str) -> Moved:
        """Withdraw a proposed or approved action before it runs (`action.rejected` says so,
        with state `cancelled`)."""
        return await self._decide(action_id, by, ActionState.CANCELLED)

    async def _decide(self, action_id: str, by: str, target: ActionState) -> Moved:
        check_name(by)
        now = _now()
        current = await self.get(action_id)
        if current is None:
            raise NotFound(f"no action {action_id}")
        sources: tuple[ActionState, ...] = (ActionState.PROPOSED,)
        if target is ActionState.CANCELLED:
            sources = (ActionState.PROPOSED, ActionState.APPROVED)
        if current.state not in sources:
            raise Finished(f"action {action_id} is {current.state}: nothing to {_verb(target)}")
        if target is ActionState.APPROVED and not may_approve(current.proposed_by, by):
            raise SameApprover(f"action {action_id} was proposed by {by}: another person approves")
        values: dict[str, Any] = {"decided_by": by, "decided_at": now}
        if target is ActionState.APPROVED:
            values["approved_by"] = by
        if target in FINISHED:
            values["finished_at"] = now
        async with write_transaction(self._engine) as conn:
            await conn.run_sync(lock_users, current.account_id, [current.extension_id])
            if not await _move(conn, action_id, current.state, target, **values):
                raise Finished(f"action {action_id} was decided meanwhile: nothing changes")
            row = await write_event(conn, await _select(conn, action_id), current.state, now)
            action = await _select(conn, action_id)
        return Moved(action, [row])

    async def claim(self, action_id: str, max_per_hour: int) -> Action | None:
        """Move an approved action to `running` when the account's hourly cap has room (one
        claimer per account at a time); None when it is not approved or must wait."""
        current = await self.get(action_id)
        if current is None or current.state is not ActionState.APPROVED:
            return None
        now = _now()
        async with write_transaction(self._engine) as conn:
            await conn.run_sync(lock_users, current.account_id, [_CAP_LOCK])
            if await _started_since(conn, current.account_id, now - HOUR) >= max_per_hour:
                return None
            moved = await _move(
                conn, action_id, ActionState.APPROVED, ActionState.RUNNING, started_at=now
            )
            return await _select(conn, action_id) if moved else None

    async def release(self, action_id: str) -> bool:
        """Give a claimed action back (running → approved) before it wrote anything: it runs
        later and takes no slot of the hourly cap meanwhile."""
        async with write_transaction(self._engine) as conn:
            return await _move(
                conn, action_id, ActionState.RUNNING, ActionState.APPROVED, started_at=None
            )

    async def finish(self, action_id: str, *, error: str | None = None) -> Moved | None:
        """Move a running action to `done` (no `error`) or `failed` and write `action.done` /
        `action.failed`; None when it was not running (another attempt recorded it)."""
        current = await self.get(action_id)
        if current is None:
            return None
        now = _now()
        target = ActionState.DONE if error is None else ActionState.FAILED
        async with write_transaction(self._engine) as conn:
            await conn.run_sync(lock_users, current.account_id, [current.extension_id])
            moved = await _move(
                conn, action_id, ActionState.RUNNING, target, finished_at=now, error=error
            )
            if not moved:
                return None
            row = await write_event(conn, await _select(conn, action_id), ActionState.RUNNING, now)
            action = await _select(conn, action_id)
        return Moved(action, [row])

    async def due(self, account_id: str | None = None) -> builtins.list[Action]:
        """Approved and running actions (running ones may be an attempt that died), oldest
        first."""
        query = select(_a).where(_a.c.state.in_((ActionState.APPROVED, ActionState.RUNNING)))
        if account_id is not None:
            query = query.where(_a.c.account_id == account_id)
        async with self._engine.connect() as conn:
            found = await conn.execute(query.order_by(_a.c.created_at, _a.c.id))
            return [from_row(m) for m in found.mappings()]

    async def counts(self, max_per_hour: int, account_id: str | None = None) -> dict[str, int]:
        """Actions by state, plus `waiting`: approved ones the hourly cap holds back."""
        where: list[ColumnElement[bool]] = []
        if account_id is not None:
            where.append(_a.c.account_id == account_id)
        since = _now() - HOUR
        async with self._engine.connect() as conn:
            by_state = await conn.execute(
                select(_a.c.state, func.count()).where(*where).group_by(_a.c.state)
            )
            counts = {str(state): int(n) for state, n in by_state.all()}
            per_account = await conn.execute(
                select(_a.c.account_id, _a.c.state, _a.c.started_at).where(
                    *where,
                    (_a.c.state == str(ActionState.APPROVED)) | (_a.c.started_at >= since),
                )
            )
            approved: dict[str, int] = {}
            started: dict[str, int] = {}
            for account, state, started_at in per_account.all():
                if state == ActionState.APPROVED:
                    approved[account] = approved.get(account, 0) + 1
                if started_at is not None and started_at >= since:
                    started[account] = started.get(account, 0) + 1
        counts = {str(s): counts.get(str(s), 0) for s in ActionState}
        counts["waiting"] = sum(
            waiting(n, started.get(account, 0), max_per_hour) for account, n in approved.items()
        )
        return counts


def _verb(target: ActionState) -> str:
    return {ActionState.APPROVED: "approve", ActionState.REJECTED: "reject"}.get(target, "cancel")


async def _select(conn: AsyncConnection, action_id: str) -> Action:
    return from_row((await conn.execute(select(_a).where(_a.c.id == action_id))).mappings().one())


async def _move(
    conn: AsyncConnection, action_id: str, source: ActionState, target: ActionState, **values: Any
) -> bool:
    """Compare-and-set: move `action_id` from `source` to `target`; False when it was not there."""
    moved = await conn.execute(
        update(_a)
        .where(and_(_a.c.id == action_id, _a.c.state == str(source)))
        .values(state=str(target), **values)
    )
    return moved.rowcount == 1


async def _started_since(conn: AsyncConnection, account_id: str, since: datetime) -> int:
    query = select(func.count()).where(_a.c.account_id == account_id, _a.c.started_at >= since)
    return int((await conn.execute(query)).scalar_one())
