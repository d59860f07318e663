"""SQL a resync needs beyond the shared store: plain reads of stored users (no row locks, so a
dry run never blocks writers), the live users a complete listing did not show, and the
safeguard's plans (`resync_plans`: pending until approved or superseded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, func, select

from workers.decide import UserRow
from workers.lifecycle import State
from workers.store import tables
from workers.store.engine import write_transaction
from workers.store.identity import Store
from workers.store.mirror import user_row

PENDING: Final = "pending"
APPROVED: Final = "approved"
SUPERSEDED: Final = "superseded"

_CHUNK = 500
_DEPROVISIONED = State.DEPROVISIONED.value


@dataclass(frozen=True)
class Plan:
    """Deprovisionings a resync held back, waiting for `ringsync resync --approve PLAN_ID`."""

    id: str
    account_id: str
    created_at: datetime
    deprovision_ids: list[str]
    ratio: float
    status: str


async def stored_users(store: Store, account_id: str, ids: Sequence[str]) -> dict[str, UserRow]:
    """The stored rows among `ids`, read without taking locks."""
    users = tables.users
    found: dict[str, UserRow] = {}
    async with store.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            query = select(users).where(
                and_(users.c.account_id == account_id, users.c.extension_id.in_(chunk))
            )
            for values in (await conn.execute(query)).mappings():
                found[values["extension_id"]] = user_row(values)
    return found


async def count_live(store: Store, account_id: str) -> int:
    """Users of the account that are not deprovisioned: the safeguard's denominator."""
    users = tables.users
    query = select(func.count()).where(
        and_(users.c.account_id == account_id, users.c.state != _DEPROVISIONED)
    )
    async with store.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def absent_users(
    store: Store, account_id: str, seen: set[str], listed_from: datetime
) -> list[str]:
    """Live users not in `seen` whose row is not newer than the listing (streamed, one column:
    memory stays bounded by what is absent, not by the account's size)."""
    users = tables.users
    query = select(users.c.extension_id, users.c.observed_at).where(
        and_(users.c.account_id == account_id, users.c.state != _DEPROVISIONED)
    )
    absent: list[str] = []
    async with store.engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=2000))
        async for row in result:
            if row.extension_id not in seen and row.observed_at <= listed_from:
                absent.append(row.extension_id)
    return absent


async def record_plan(
    store: Store, plan_id: str, account_id: str, ids: Sequence[str], ratio: float
) -> None:
    """Store a new pending plan; older pending plans of the account are superseded by it."""
    plans = tables.resync_plans
    async with write_transaction(store.engine) as conn:
        await conn.execute(
            plans.update()
            .where(and_(plans.c.account_id == account_id, plans.c.status == PENDING))
            .values(status=SUPERSEDED)
        )
        await conn.execute(
            plans.insert().values(
                id=plan_id,
                account_id=account_id,
                created_at=datetime.now(UTC),
                deprovision_ids=list(ids),
                ratio=ratio,
                status=PENDING,
            )
        )


async def settle_plans(
    store: Store, account_id: str, status: str, *, only: str | None = None
) -> int:
    """Close the account's pending plans (or just plan `only`) as `approved` or `superseded`;
    returns how many."""
    plans = tables.resync_plans
    update = plans.update().where(and_(plans.c.account_id == account_id, plans.c.status == PENDING))
    if only is not None:
        update = update.where(plans.c.id == only)
    async with write_transaction(store.engine) as conn:
        result = await conn.execute(update.values(status=status))
        return int(result.rowcount)


async def find_plan(store: Store, plan_id: str) -> Plan | None:
    plans = tables.resync_plans
    async with store.engine.connect() as conn:
        values = (await conn.execute(select(plans).where(plans.c.id == plan_id))).mappings().first()
    return None if values is None else _plan(values)


async def pending_plans(store: Store, account_id: str | None = None) -> list[Plan]:
    plans = tables.resync_plans
    query = select(plans).where(plans.c.status == PENDING).order_by(plans.c.created_at)
    if account_id is not None:
        query = query.where(plans.c.account_id == account_id)
    async with store.engine.connect() as conn:
        return [_plan(values) for values in (await conn.execute(query)).mappings()]


async def list_plans(store: Store, account_id: str) -> list[Plan]:
    plans = tables.resync_plans
    query = select(plans).where(plans.c.account_id == account_id).order_by(plans.c.created_at)
    async with store.engine.connect() as conn:
        return [_plan(values) for values in (await conn.execute(query)).mappings()]


def _plan(values: Any) -> Plan:
    return Plan(
        id=values["id"],
        account_id=values["account_id"],
        created_at=values["created_at"],
        deprovision_ids=list(values["deprovision_ids"] or []),
        ratio=float(values["ratio"]),
        status=values["status"],
    )
