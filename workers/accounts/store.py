"""The accounts table: add, read, change state, replace credentials, remove, purge.

Credentials arrive here already sealed (see `workers.accounts.vault`); this module never sees
a JWT in plaintext. An account that starts failing writes one `account.failing` outbox event in
the same transaction as its state change, so downstream hears it exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import RowMapping

from workers.store import tables
from workers.store.engine import write_transaction
from workers.store.identity import OutboxRow, Store
from workers.store.mirror import insert_for

ACCOUNT_FAILING = "account.failing"
# Account-level events sit in the outbox beside user events, under this extension id.
ACCOUNT_EVENTS = ""


class AccountState(StrEnum):
    ACTIVE = "active"
    FAILING = "failing"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    server_url: str
    is_default: bool
    state: AccountState
    reason: str | None
    created_at: datetime
    updated_at: datetime
    credentials: str | None = field(default=None, repr=False)


def _account(m: RowMapping) -> Account:
    return Account(
        account_id=m["account_id"],
        name=m["name"],
        server_url=m["server_url"],
        is_default=bool(m["is_default"]),
        state=AccountState(m["state"]),
        reason=m["reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        credentials=m["credentials"],
    )


class AccountStore:
    """The accounts rows of one identity store."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine

    async def get(self, account_id: str) -> Account | None:
        query = select(tables.accounts).where(tables.accounts.c.account_id == account_id)
        async with self._engine.connect() as conn:
            found = (await conn.execute(query)).mappings().first()
        return None if found is None else _account(found)

    async def list(self, *, include_removed: bool = False) -> list[Account]:
        query = select(tables.accounts).order_by(
            tables.accounts.c.is_default.desc(), tables.accounts.c.account_id
        )
        if not include_removed:
            query = query.where(tables.accounts.c.state != AccountState.REMOVED)
        async with self._engine.connect() as conn:
            return [_account(m) for m in (await conn.execute(query)).mappings()]

    async def register_default(self, account_id: str, server_url: str) -> None:
        """The RC_* environment's account: a row without credentials (they stay in the env)."""
        now = datetime.now(UTC)
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(tables.accounts)
                .where(tables.accounts.c.is_default, tables.accounts.c.account_id != account_id)
                .values(is_default=False, updated_at=now)
            )
            found = await conn.execute(
                select(tables.accounts.c.is_default).where(
                    tables.accounts.c.account_id == account_id
                )
            )
            if found.first() is None:
                await conn.execute(
                    insert_for(conn, tables.accounts)
                    .values(
                        account_id=account_id,
                        name="default",
                        server_url=server_url,
                        credentials=None,
                        is_default=True,
                        state=AccountState.ACTIVE,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                )
            else:
                await conn.execute(
                    update(tables.accounts)
                    .where(tables.accounts.c.account_id == account_id)
                    .values(is_default=True, server_url=server_url, credentials=None)
                )

    async def reactivate_default(self) -> None:
        """A process starting may carry new RC_* credentials: the default account gets another
        chance (it fails again, and says so once more, if they are still refused)."""
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(tables.accounts)
                .where(
                    tables.accounts.c.is_default,
                    tables.accounts.c.state == AccountState.FAILING,
                )
                .values(state=AccountState.ACTIVE, reason=None, updated_at=datetime.now(UTC))
            )

    async def add(self, account_id: str, name: str, server_url: str, sealed: str) -> Account | None:
        """Store a new account (or bring back a removed one); None when it is already here."""
        now = datetime.now(UTC)
        values = {
            "name": name,
            "server_url": server_url,
            "credentials": sealed,
            "state": AccountState.ACTIVE,
            "reason": None,
            "updated_at": now,
        }
        async with write_transaction(self._engine) as conn:
            found = (
                await conn.execute(
                    select(tables.accounts.c.state).where(
                        tables.accounts.c.account_id == account_id
                    )
                )
            ).first()
            if found is None:
                await conn.execute(
                    tables.accounts.insert().values(
                        account_id=account_id, is_default=False, created_at=now, **values
                    )
                )
            elif found[0] != AccountState.REMOVED:
                return None
            else:
                await conn.execute(
                    update(tables.accounts)
                    .where(tables.accounts.c.account_id == account_id)
                    .values(**values)
                )
        return await self.get(account_id)

    async def set_credentials(self, account_id: str, sealed: str) -> None:
        """New credentials: the account is active again."""
        await self._set(account_id, credentials=sealed, state=AccountState.ACTIVE, reason=None)

    async def reseal_all(self, reseal: Callable[[str], str]) -> int:
        """Apply `reseal` (sealed → sealed) to every stored credential; returns how many."""
        query = select(tables.accounts.c.account_id, tables.accounts.c.credentials).where(
            tables.accounts.c.credentials.is_not(None)
        )
        count = 0
        async with write_transaction(self._engine) as conn:
            for account_id, sealed in (await conn.execute(query)).all():
                await conn.execute(
                    update(tables.accounts)
                    .where(tables.accounts.c.account_id == account_id)
                    .values(credentials=reseal(sealed))
                )
                count += 1
        return count

    async def remove(self, account_id: str) -> None:
        await self._set(account_id, state=AccountState.REMOVED, credentials=None)

    async def _set(self, account_id: str, **values: object) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(tables.accounts)
                .where(tables.accounts.c.account_id == account_id)
                .values(updated_at=datetime.now(UTC), **values)
            )

    async def mark_failing(self, account_id: str, reason: str) -> OutboxRow | None:
        """Move an active account to `failing` and write its `account.failing` event; None when
        it was not active (already failing, removed): downstream hears it once."""
        now = datetime.now(UTC)
        accounts, outbox = tables.accounts, tables.outbox
        async with write_transaction(self._engine) as conn:
            moved = await conn.execute(
                update(accounts)
                .where(accounts.c.account_id == account_id, accounts.c.state == AccountState.ACTIVE)
                .values(state=AccountState.FAILING, reason=reason, updated_at=now)
            )
            if moved.rowcount != 1:
                return None
            last = await conn.execute(
                select(func.coalesce(func.max(outbox.c.sequence), 0)).where(
                    outbox.c.account_id == account_id, outbox.c.extension_id == ACCOUNT_EVENTS
                )
            )
            sequence = int(last.scalar_one()) + 1
            event_id = str(uuid.uuid4())
            # The shape of every outbox event (see `workers.decide.event_payload`): `state` is
            # the account's, there is no user.
            payload = {
                "type": ACCOUNT_FAILING,
                "event_id": event_id,
                "occurred_at": now.isoformat(),
                "sequence": sequence,
                "cause": None,
                "account_id": account_id,
                "extension_id": ACCOUNT_EVENTS,
                "state": AccountState.FAILING.value,
                "previous_state": AccountState.ACTIVE.value,
                "user": {},
                "diffs": {},
                "reason": reason,
            }
            await conn.execute(
                outbox.insert().values(
                    event_id=event_id,
                    account_id=account_id,
                    extension_id=ACCOUNT_EVENTS,
                    type=ACCOUNT_FAILING,
                    sequence=sequence,
                    occurred_at=now,
                    payload=payload,
                    cause=None,
                    created_at=now,
                )
            )
            row = (await conn.execute(select(outbox).where(outbox.c.event_id == event_id))).one()
        return OutboxRow(**row._mapping)

    async def purge(self, account_id: str) -> None:
        """Delete the account's mirror: users, their history, its notifications and state."""
        mirrored = (
            tables.users,
            tables.user_changes,
            tables.events,
            tables.gaps,
            tables.resync_plans,
            tables.state,
        )
        async with write_transaction(self._engine) as conn:
            for table in mirrored:
                await conn.execute(delete(table).where(table.c.account_id == account_id))
