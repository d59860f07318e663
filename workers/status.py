"""The health report of a deployment (`ringsync status --json`, `GET /v1/status`): the queue,
the last notification, our subscription, the last gap, dead letters, resync plans waiting for
approval, the rate-limit budgets, the deliveries, and which users' deliveries are blocked behind
a dead one. `attention` lists the reasons a human should look.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from events.queue import IN_PROGRESS_KEY_PREFIX
from events.settings import Settings
from workers.accounts.store import AccountStore
from workers.actions.store import ActionStore
from workers.delivery.deliver import label
from workers.delivery.holds import holds
from workers.delivery.outbox import delivery_counts
from workers.resync.store import pending_plans
from workers.ringcentral.budget import Budget
from workers.store import tables
from workers.store.identity import Store
from workers.subscription.store import subscription_status

OLDEST_JOB_LIMIT: Final = 300.0
# Jobs looked at for "in progress" (arq keeps running jobs in the queue, at the lowest scores).
_HEAD: Final = 1000
# The newest dead letters listed one by one (all are counted).
DEAD_LETTERS_SHOWN: Final = 20


async def build_report(settings: Settings, redis: Redis, store: Store) -> dict[str, Any]:
    """Everything `status` shows, JSON-ready, with `attention`: the reasons to look."""
    report: dict[str, Any] = {
        "queue": await queue_report(redis, settings),
        "last_event": await _last_event(store),
        "subscription": _jsonable(await subscription_status(store)),
        "last_gap": await _last_gap(store),
        "dead_letters": await _dead_letters(store),
        "approvals": await _approvals(store),
        "rate_limits": await _budgets(settings, redis),
        "deliveries": await delivery_counts(store),
        "blocked": await _blocked(store),
        "accounts": await account_rows(store, budgets=(settings, redis)),
        "actions": await ActionStore(store).counts(settings.actions_max_per_hour),
    }
    report["attention"] = attention(report)
    return report


def attention(report: dict[str, Any]) -> list[str]:
    """Why a human should look (empty when nobody needs to)."""
    reasons: list[str] = []
    sub = report["subscription"]
    status = sub.get("status") if isinstance(sub, dict) else None
    if not status or status in ("missing", "unknown", "none"):
        reasons.append("no subscription")
    elif status != "Active":
        reasons.append(f"subscription is {status}")
    if report["dead_letters"]["count"]:
        reasons.append(f"{report['dead_letters']['count']} dead letters")
    blocked = report["blocked"]["count"]
    if blocked:
        reasons.append(
            f"{blocked} dead deliveries block later events of their users (see blocked; "
            "ringsync replay --outbox, or --outbox --skip ID)"
        )
    for plan in report["approvals"]["plans"]:
        reasons.append(
            f"resync plan {plan['plan_id']} waits for approval "
            f"(`ringsync resync --approve {plan['plan_id']}`)"
        )
    for account in report["accounts"]:
        if account["state"] == "failing":
            reasons.append(
                f"account {account['account_id']} is failing: RingCentral refused its "
                f"credentials (`ringsync accounts update {account['account_id']} --jwt-file F`)"
            )
    waiting = report["actions"]["waiting"]
    if waiting:
        reasons.append(
            f"{waiting} approved actions wait for the hourly cap "
            "(RINGSYNC_ACTIONS_MAX_PER_HOUR); they run in a later hour"
        )
    oldest = report["queue"]["oldest_age_seconds"]
    if oldest is not None and oldest > OLDEST_JOB_LIMIT:
        reasons.append(f"the oldest queued job has waited {oldest:.0f} s")
    return reasons


async def account_rows(
    store: Store, *, budgets: tuple[Settings, Redis] | None = None
) -> list[dict[str, Any]]:
    """Every account as `accounts list --json` and `status --json` show it; with `budgets`
    (status), each account's own rate-limit budgets too."""
    rows = []
    count = select(tables.users.c.account_id, func.count()).group_by(tables.users.c.account_id)
    async with store.engine.connect() as conn:
        users = {str(account): int(n) for account, n in await conn.execute(count)}
    for account in await AccountStore(store).list():
        scope = "" if account.is_default else account.account_id
        subscription = await subscription_status(store, account.account_id)
        row = {
            "account_id": account.account_id,
            "name": account.name,
            "state": account.state.value,
            "server_url": account.server_url,
            "default": account.is_default,
            "users": users.get(account.account_id, 0),
            "subscription": subscription.get("id"),
            "last_event": await store.get_state("last_event_at", scope),
            "reason": account.reason,
        }
        if budgets is not None:
            settings, redis = budgets
            if scope:
                settings = settings.for_account(scope, server_url=account.server_url, jwt="")
            row["rate_limits"] = await _budgets(settings, redis)
        rows.append(row)
    return rows


async def queue_report(redis: Redis, settings: Settings) -> dict[str, Any]:
    """Depth, jobs due but not started, jobs running and the age of the oldest waiting job."""
    name = settings.queue_name
    now_ms = time.time() * 1000
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(name)
        pipe.zrange(name, 0, _HEAD - 1, withscores=True)
        pipe.zcount(name, f"({now_ms}", "+inf")
        depth, head, deferred = await pipe.execute()
    running: list[bool] = []
    if head:
        async with redis.pipeline(transaction=False) as pipe:
            for member, _ in head:
                pipe.exists(IN_PROGRESS_KEY_PREFIX + member.decode())
            running = [bool(found) for found in await pipe.execute()]
    in_progress = sum(running)
    waiting = [score for (_, score), busy in zip(head, running, strict=True) if not busy]
    due = [score for score in waiting if score <= now_ms]
    oldest = (now_ms - min(due)) / 1000 if due else None
    return {
        "name": name,
        "depth": int(depth),
        "ready": max(int(depth) - int(deferred) - in_progress, 0),
        "deferred": int(deferred),
        "in_progress": in_progress,
        "oldest_age_seconds": None if oldest is None else round(oldest, 3),
    }


async def _last_event(store: Store) -> dict[str, Any]:
    value = await store.get_state("last_event_at")
    if value is None:
        return {"at": None, "age_seconds": None}
    at = datetime.fromisoformat(value)
    return {"at": at.isoformat(), "age_seconds": round((_now() - at).total_seconds(), 3)}


async def _last_gap(store: Store) -> dict[str, Any] | None:
    gaps = tables.gaps
    query = select(gaps).order_by(gaps.c.id.desc()).limit(1)
    async with store.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        return None
    return {
        "account_id": row["account_id"],
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
        "reason": row["reason"],
        "resync_id": row["resync_id"],
    }


async def _dead_letters(store: Store) -> dict[str, Any]:
    async with store.engine.connect() as conn:
        return await dead_letter_report(conn)


async def dead_letter_report(conn: AsyncConnection) -> dict[str, Any]:
    """Dead letters not replayed yet: how many, by job, by account, and the newest few with the
    account their job acted for (the default account's under its id once known, else
    "default"). No error text: a delivery's may quote an endpoint's credentials."""
    letters = tables.dead_letters
    unreplayed = letters.c.replayed_at.is_(None)
    counts = select(letters.c.job, letters.c.account_id, func.count()).where(unreplayed)
    found = (await conn.execute(counts.group_by(letters.c.job, letters.c.account_id))).all()
    # Usually there are none: then one statement is all this costs.
    newest: list[Any] = []
    if found:
        query = (
            select(
                letters.c.id,
                letters.c.account_id,
                letters.c.job,
                letters.c.attempts,
                letters.c.created_at,
            )
            .where(unreplayed)
            .order_by(letters.c.id.desc())
            .limit(DEAD_LETTERS_SHOWN)
        )
        newest = list(await conn.execute(query))
    default_id = "default"
    if any(not row.account_id for row in [*found, *newest]):
        default = select(tables.accounts.c.account_id).where(tables.accounts.c.is_default)
        default_id = (await conn.execute(default)).scalar_one_or_none() or "default"
    by_job: dict[str, int] = {}
    by_account: dict[str, int] = {}
    for job, account_id, count in found:
        by_job[str(job)] = by_job.get(str(job), 0) + int(count)
        account = str(account_id or default_id)
        by_account[account] = by_account.get(account, 0) + int(count)
    shown = [
        {
            "id": int(row.id),
            "account_id": str(row.account_id or default_id),
            "job": row.job,
            "attempts": int(row.attempts),
            "created_at": row.created_at.isoformat(),
        }
        for row in newest
    ]
    return {
        "count": sum(by_job.values()),
        "by_job": by_job,
        "by_account": by_account,
        "letters": shown,
    }


async def _blocked(store: Store) -> dict[str, Any]:
    count, found = await holds(store.engine)
    return {
        "count": count,
        "holds": [
            {
                "delivery_id": hold.delivery_id,
                "outbox_id": hold.outbox_id,
                "account_id": hold.account_id,
                "extension_id": hold.extension_id,
                "endpoint": label(hold.endpoint),
                "type": hold.type,
                # An error may quote the URL: never its credentials or query string.
                "reason": (hold.reason or "").replace(hold.endpoint, label(hold.endpoint)),
                "dead_since": hold.dead_since.isoformat(),
                "waiting": hold.waiting,
            }
            for hold in found
        ],
    }


async def _approvals(store: Store) -> dict[str, Any]:
    plans = await pending_plans(store)
    return {
        "pending": len(plans),
        "plans": [
            {
                "id": plan.id,
                "plan_id": plan.id,
                "account_id": plan.account_id,
                "created_at": plan.created_at.isoformat(),
                "deprovisions": len(plan.deprovision_ids),
                "ratio": round(plan.ratio, 4),
            }
            for plan in plans
        ],
    }


async def _budgets(settings: Settings, redis: Redis) -> dict[str, Any]:
    """The rate-limit budgets of the account `settings` acts for (its own Redis keys)."""
    snapshot = await Budget(settings, redis).snapshot()
    return {group: budget.model_dump(mode="json") for group, budget in snapshot.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _now() -> datetime:
    return datetime.now(UTC)
