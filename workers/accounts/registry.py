"""Which account a job acts for, and that account's own dependencies.

A job queued for a stored account carries `account=ID`; `scoped` swaps the job's `Deps` for that
account's (its credentials, its token, rate-limit budget, locks, coalescing keys and queue, all
under Redis keys of its own), so the jobs themselves never branch on accounts. Jobs without the
argument act for the default account, exactly as before accounts existed. An account that is
failing or removed runs no job that would call RingCentral: it is skipped, not retried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from arq.typing import WorkerCoroutine

from events.queue import Queue
from workers.accounts.store import Account, AccountState, AccountStore
from workers.accounts.vault import Vault
from workers.coalesce import Coalescer
from workers.context import Deps, deps
from workers.delivery.outbox import announce
from workers.metrics import WorkerMetrics
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import AuthError

log = logging.getLogger(__name__)

# A changed row (new credentials, failing, removed) reaches every worker within this long.
RELOAD_EVERY = 5.0


async def account_deps(base: Deps, account: Account, *, max_wait: float, **client: Any) -> Deps:
    """`base` acting for the stored `account`: its settings, client, coalescer and queue."""
    if account.credentials is None:
        raise ValueError(f"account {account.account_id} has no stored credentials")
    jwt = Vault(base.settings).open(account.credentials)
    settings = base.settings.for_account(account.account_id, server_url=account.server_url, jwt=jwt)
    book = AccountStore(base.store)

    async def refused(exc: AuthError) -> None:
        await mark_failing(base, book, account.account_id, str(exc))

    return Deps(
        settings=settings,
        redis=base.redis,
        queue=Queue(base.redis, settings.queue_name, account=account.account_id),
        store=base.store,
        client=RingCentral(settings, base.redis, max_wait=max_wait, on_refused=refused, **client),
        coalescer=Coalescer(base.redis, settings, window=settings.coalesce_window),
        _account_id=account.account_id,
    )


async def mark_failing(base: Deps, book: AccountStore, account_id: str, reason: str) -> None:
    """The account's credentials were refused: stop calling RingCentral for it, tell downstream
    once (`account.failing`)."""
    row = await book.mark_failing(account_id, reason)
    if row is not None:
        log.error("account credentials refused; account is failing", extra={"account": account_id})
        await announce(base, [row])


class Registry:
    """The Deps of every stored account this worker has acted for, reloaded now and then."""

    def __init__(self, base: Deps, metrics: WorkerMetrics | None = None) -> None:
        self._base = base
        self._book = AccountStore(base.store)
        self._metrics = metrics
        self._built: dict[str, tuple[Account, Deps]] = {}
        # Every stored account's row, read in one query at most once every RELOAD_EVERY: one
        # read per account per RELOAD_EVERY costs a busy worker of many accounts dearly.
        self._rows: dict[str, Account] = {}
        self._rows_at = -RELOAD_EVERY
        self._default_registered = False
        self._default_failing: tuple[float, bool] = (0.0, False)
        base.client.on_refused = self._default_refused

    async def _default_refused(self, exc: AuthError) -> None:
        known = await self._base.redis.get(self._base.settings.root_key("account_id"))
        if known is not None:
            await mark_failing(self._base, self._book, known.decode(), str(exc))
            self._default_failing = (time.monotonic(), True)

    async def default_failing(self) -> bool:
        """Whether RingCentral refused the RC_* credentials (until a restart with new ones)."""
        checked, failing = self._default_failing
        if time.monotonic() - checked >= RELOAD_EVERY:
            rows = await self._accounts()
            found = [a for a in rows.values() if a.is_default]
            failing = bool(found) and found[0].state is AccountState.FAILING
            self._default_failing = (time.monotonic(), failing)
        return failing

    async def _accounts(self, *, missing: str = "") -> dict[str, Account]:
        """Every stored account's row (removed ones too), at most RELOAD_EVERY old; read again
        at once when `missing` is not among them (an account added a moment ago)."""
        now = time.monotonic()
        if now - self._rows_at >= RELOAD_EVERY or (missing and missing not in self._rows):
            rows = await self._book.list(include_removed=True)
            self._rows = {row.account_id: row for row in rows}
            self._rows_at = now
        return self._rows

    async def reactivate_default(self) -> None:
        await self._book.reactivate_default()

    @property
    def base(self) -> Deps:
        return self._base

    async def register_default(self) -> None:
        """Give the RC_* environment's account its row, once its id is known (no call made)."""
        if self._default_registered:
            return
        try:
            known = await self._base.redis.get(self._base.settings.root_key("account_id"))
            if known is not None:
                await self._book.register_default(known.decode(), self._base.settings.rc_server_url)
                self._default_registered = True
        except Exception as exc:  # the job is done: the next one registers it
            log.info("default account not registered yet: %s", type(exc).__name__)

    async def deps(self, account_id: str) -> Deps | None:
        """The account's Deps (`active` False while it is failing), or None when it was removed
        or is unknown."""
        account = (await self._accounts(missing=account_id)).get(account_id)
        if account is None or account.state is AccountState.REMOVED:
            return None
        if account.is_default:
            return self._base
        cached = self._built.get(account_id)
        if cached is not None and cached[0].updated_at == account.updated_at:
            return cached[1]
        if cached is not None:
            await close(cached[1])
        transport = None
        if self._metrics is not None:
            transport = self._metrics.transport(account=account_id)
        built = await account_deps(
            self._base,
            account,
            max_wait=self._base.settings.job_timeout / 3,
            transport=transport,
        )
        built = dataclasses.replace(built, active=account.state is AccountState.ACTIVE)
        self._built[account_id] = (account, built)
        return built

    async def close(self) -> None:
        for _, built in self._built.values():
            await close(built)
        self._built.clear()


async def close(d: Deps) -> None:
    await d.queue.close()
    await d.client.aclose()


@contextlib.asynccontextmanager
async def acting_for(
    base: Deps, account_id: str, *, max_wait: float = 30.0
) -> AsyncIterator[Deps | None]:
    """`base` (the default account's Deps) when `account_id` is the default account, that
    stored account's own Deps otherwise (closed after), None for an account not mirrored."""
    found = await AccountStore(base.store).get(account_id)
    if found is None or found.is_default:
        yield base if found is not None or account_id == await base.account_id() else None
        return
    if found.state is AccountState.REMOVED:
        yield None
        return
    scoped = await account_deps(base, found, max_wait=max_wait)
    try:
        yield scoped
    finally:
        await close(scoped)


def registry(ctx: dict[str, Any]) -> Registry:
    """The worker's registry, built at start-up (see `workers.main.start`)."""
    found = ctx.get("accounts")
    if not isinstance(found, Registry):
        raise RuntimeError("the worker's account registry was not built at start-up")
    return found


def scoped(
    job: WorkerCoroutine,
    *,
    calls_ringcentral: bool = True,
    keeps_notifications: bool = False,
    deferred_as: tuple[str, str] | None = None,
) -> WorkerCoroutine:
    """`job`, acting for the account named by its `account` argument (none = the default).

    A job that never calls RingCentral (delivery) runs whatever the account's state: an
    `account.failing` event must still reach downstream. The ingest (`keeps_notifications`)
    runs for a failing account too, with `Deps.active` False: the notification is kept and its
    users marked, nothing is read until the credentials work again.

    With `deferred_as` (the job's name and the rate-limit group it reads in), a job whose
    account has no budget for a while (a 429 penalty, a spent window) is queued again for when
    there is, instead of holding a worker slot asleep while other accounts' work waits.
    """

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, account: str = "", **kwargs: Any) -> Any:
        accounts = registry(ctx)
        if not calls_ringcentral:
            return await job(ctx, *args, **kwargs)
        if account:
            found = await accounts.deps(account)
        else:
            found = deps(ctx)
            if await accounts.default_failing():
                found = dataclasses.replace(found, active=False)
        if found is None or not (found.active or keeps_notifications):
            log.info("job skipped: account not active", extra={"account": account or "default"})
            return "account not active"
        ctx["deps"] = found  # arq gives every job its own ctx
        if deferred_as is not None and await _defer(ctx, deferred_as, args, kwargs):
            return "deferred"
        result = await job(ctx, *args, **kwargs)
        if not account:  # its first job may be the one that learned the default's id
            await accounts.register_default()
        return result

    return run


# A job waits for budget inside itself up to this long; beyond, it is queued again for later.
DEFER_OVER = 1.0


async def _defer(
    ctx: dict[str, Any], deferred_as: tuple[str, str], args: Any, kwargs: dict[str, Any]
) -> bool:
    """Queue the job again for when its group has budget; False when it may run now."""
    d = deps(ctx)
    name, group = deferred_as
    at = await d.client.budget.available_at(group)
    wait = at - time.time()
    if wait <= DEFER_OVER:
        return False
    # One id per moment it is due, so a re-run of this job queues no second copy.
    base = str(ctx.get("job_id") or name).split("~at")[0]
    await d.queue.enqueue(name, *args, job_id=f"{base}~at{int(at)}", defer_by=wait, **kwargs)
    log.info(
        "job deferred: no rate-limit budget",
        extra={"job_id": ctx.get("job_id"), "group": group, "delay": round(wait, 3)},
    )
    return True


def stagger(account_id: str, spread: float = 3600.0) -> float:
    """Seconds after the scheduled time an account's share of a periodic job starts (its daily
    resync, its sweeps): spread over `spread` seconds by account id, so a hundred accounts do
    not list at once. The same in every worker; 0 when `spread` is under a second."""
    if spread < 1:
        return 0.0
    digest = hashlib.sha256(account_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % int(spread)


def for_every_account(
    job: WorkerCoroutine, function: str, reason: str, *, spread: float = 0.0
) -> WorkerCoroutine:
    """A cron `job` for the default account that first queues `function` for every active
    stored account (each then runs with its own credentials, locks and budget), each at its
    own offset within `spread` seconds (`stagger`): queued at one instant, a thousand
    accounts' jobs would sit ahead of every change that arrives meanwhile."""

    @functools.wraps(job)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        base = registry(ctx).base
        for account in await AccountStore(base.store).list():
            if account.is_default or account.state is not AccountState.ACTIVE:
                continue
            await base.queue.enqueue(
                function,
                reason,
                account=account.account_id,
                job_id=base.settings.key("account", account.account_id, function, reason),
                defer_by=stagger(account.account_id, spread),
            )
        return await job(ctx, *args, **kwargs)

    return run
