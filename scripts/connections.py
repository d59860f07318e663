"""What a command needs to do a worker's work in its own process (resync, replay, status, demo):
the same `Deps` a worker builds, opened with clear one-line failures when Redis or the identity
store cannot be reached, and closed again."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from events.queue import Queue
from events.settings import Settings
from scripts.cli import Failure
from workers.accounts.registry import account_deps, close
from workers.accounts.store import AccountState, AccountStore
from workers.accounts.vault import MissingKey, UnreadableCredentials
from workers.coalesce import Coalescer
from workers.context import Deps
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import RingCentralError
from workers.store.identity import Store


def safe_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A Redis client that answered a PING, or `Failure`."""
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=3)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise Failure(
                f"cannot reach Redis at {safe_url(settings.redis_url)}: {reason}"
            ) from None
        yield client
    finally:
        await client.aclose()


async def open_store(settings: Settings) -> Store:
    """The identity store (migrated), or `Failure` naming where it is and why it failed."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        return await Store.open(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            reason = exc.orig
        first = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        raise Failure(f"cannot use the identity store at {where}: {first}") from None


@contextlib.asynccontextmanager
async def open_deps(settings: Settings, *, max_wait: float = 30.0) -> AsyncIterator[Deps]:
    """A worker's dependencies in this process; RingCentral errors become `Failure`.

    `max_wait` caps one request's wait for rate-limit budget (a listing needs a whole window).
    """
    async with open_redis(settings) as redis:
        store = await open_store(settings)
        queue = Queue(redis, settings.queue_name)
        client = RingCentral(settings, redis, max_wait=max_wait)
        try:
            yield Deps(
                settings=settings,
                redis=redis,
                queue=queue,
                store=store,
                client=client,
                coalescer=Coalescer(redis, settings, window=settings.coalesce_window),
            )
        except RingCentralError as exc:
            raise Failure(f"RingCentral: {exc}") from None
        finally:
            await queue.close()
            await client.aclose()
            await store.close()


def account_argument(parser: argparse.ArgumentParser) -> None:
    """`--account ID`, for commands that concern one account."""
    parser.add_argument(
        "--account",
        metavar="ID",
        help="the account (its numeric id); may be omitted while only one is mirrored",
    )


@contextlib.asynccontextmanager
async def open_account_deps(
    settings: Settings, account: str | None, *, max_wait: float = 30.0
) -> AsyncIterator[Deps]:
    """`open_deps` acting for `account` (a stored account's id, or the default's).

    Without `account`, the default account, unless other accounts are stored: then which one
    is meant must be said (`BadSettings`, exit 2, naming `--account`).
    """
    from scripts.cli import BadSettings

    async with open_deps(settings, max_wait=max_wait) as base:
        book = AccountStore(base.store)
        stored = [a for a in await book.list() if not a.is_default]
        if account is None:
            if stored:
                ids = ", ".join(a.account_id for a in stored)
                raise BadSettings(
                    f"this deployment mirrors several accounts (the default and {ids}): "
                    "name one with --account ID"
                )
            yield base
            return
        found = await book.get(account)
        if found is not None and found.is_default:
            yield base
            return
        if found is None or found.state is AccountState.REMOVED:
            raise Failure(f"no account {account}; `ringsync accounts list` shows them")
        try:
            scoped = await account_deps(base, found, max_wait=max_wait)
        except (MissingKey, UnreadableCredentials) as exc:
            raise BadSettings(str(exc)) from None
        try:
            yield scoped
        finally:
            await close(scoped)
