"""Notifications receivers refused while Redis was away (`events.refusals`), made into gaps.

Receivers report to the default account's check. A report naming other accounts, or every
account (`EVERY_ACCOUNT`: the receiver could not tell whose they were), is handed on to each of
them as a report of its own, with a check queued for it: each account records its own gap and
runs its own resync, with its own credentials, lock and budget.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError

from events.queue import RENEW
from events.refusals import EVERY_ACCOUNT, REFUSED, Refused, refusals_key
from workers.accounts.store import AccountStore
from workers.context import Deps
from workers.subscription.store import Gap

log = logging.getLogger(__name__)

Repair = Callable[[Deps, str, Gap], Awaitable[bool]]


async def repair_refusals(d: Deps, account_id: str, repair: Repair) -> int:
    """Record a gap (and queue its resync, `repair`) for each report naming this account; hand
    the others' share on. A report leaves Redis only once both are done. Returns the gaps
    recorded for this account."""
    key = refusals_key(d.settings)
    reports: dict[bytes, bytes] = await d.redis.hgetall(key)  # type: ignore[misc]
    stored_only = bool(d.settings.account)  # a stored account's reports are its own
    others: list[str] | None = None
    repaired = 0
    for field, raw in reports.items():
        try:
            refused = Refused.model_validate_json(raw)
        except ValidationError:
            log.warning("unreadable report of refused notifications dropped")
            continue
        if stored_only or {"", EVERY_ACCOUNT} & set(refused.accounts):
            await repair(d, account_id, Gap(refused.started_at, refused.ended_at, REFUSED))
            repaired += 1
        if not stored_only:
            if others is None:
                others = [
                    a.account_id for a in await AccountStore(d.store).list() if not a.is_default
                ]
            named = others if EVERY_ACCOUNT in refused.accounts else refused.accounts
            await _hand_on(d, field.decode(), refused, [a for a in others if a in named])
    if reports:
        await d.redis.hdel(key, *(field.decode() for field in reports))  # type: ignore[misc]
    return repaired


async def _hand_on(d: Deps, field: str, refused: Refused, accounts: list[str]) -> None:
    """Give each account a report of its own (same field: a retry writes the same) and queue
    its check."""
    for account in accounts:
        scoped = d.settings.for_account(account, server_url=d.settings.rc_server_url, jwt="")
        own = refused.model_copy(update={"accounts": (account,)})
        await d.redis.hset(refusals_key(scoped), field, own.model_dump_json())  # type: ignore[misc]
        await d.queue.enqueue(RENEW, REFUSED, account=account, job_id=scoped.key("renew", field))
    if accounts:
        log.warning(
            "notifications of %d other accounts were refused; each will resync",
            len(accounts),
            extra={"refused_since": refused.started_at.isoformat()},
        )
