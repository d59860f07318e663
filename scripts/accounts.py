"""`ringsync accounts add|list|update|remove|rotate-key`: the RingCentral accounts mirrored.

A JWT is read from a file or stdin, never from the command line (argv is visible to every user
of the machine and lands in shell history); it is checked with RingCentral, which also says the
account's numeric id, then stored encrypted under RINGSYNC_SECRET_KEY. It is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

import orjson

from events.queue import RESYNC
from events.routing import SUBSCRIPTION_ACCOUNTS
from events.settings import Settings
from scripts.cli import BadSettings, Failure
from scripts.connections import open_deps
from workers.accounts.registry import account_deps, close
from workers.accounts.store import Account, AccountState, AccountStore
from workers.accounts.vault import MissingKey, UnreadableCredentials, Vault
from workers.actions.protection import protection_key
from workers.context import Deps
from workers.ringcentral.client import RingCentral
from workers.ringcentral.errors import RingCentralError
from workers.status import account_rows
from workers.subscription.renewal import NotConfigured, ensure_subscription


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "accounts", help="the RingCentral accounts this deployment mirrors"
    )
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = commands.add_parser("add", help="register an account; prints its id")
    _jwt_source(add)
    add.add_argument("--name", help="a name for people (default: RingCentral's)")
    add.add_argument("--server-url", help="RingCentral's address (default: RC_SERVER_URL)")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(run=run_add)

    listed = commands.add_parser("list", help="every account with its state")
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    listed.set_defaults(run=run_list)

    update = commands.add_parser("update", help="new credentials for an account")
    update.add_argument("account", metavar="ID")
    _jwt_source(update)
    update.set_defaults(run=run_update)

    remove = commands.add_parser("remove", help="delete its subscription and stop its jobs")
    remove.add_argument("account", metavar="ID")
    remove.add_argument("--purge", action="store_true", help="also delete its mirror")
    remove.set_defaults(run=run_remove)

    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt stored credentials with the first RINGSYNC_SECRET_KEY"
    )
    rotate.set_defaults(run=run_rotate)


def _jwt_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwt-file", type=Path, metavar="F", help="read the JWT from this file")
    source.add_argument("--jwt-stdin", action="store_true", help="read the JWT from stdin")


def read_jwt(args: argparse.Namespace) -> str:
    """The JWT, surrounding whitespace stripped; a missing or empty one is bad usage."""
    if args.jwt_stdin:
        jwt = sys.stdin.read().strip()
        where = "stdin"
    else:
        try:
            jwt = args.jwt_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadSettings(
                f"cannot read --jwt-file {args.jwt_file}: {type(exc).__name__}"
            ) from None
        where = str(args.jwt_file)
    if not jwt or any(c.isspace() for c in jwt):
        raise BadSettings(f"no JWT in {where} (one token, nothing else)")
    return jwt


def vault(settings: Settings) -> Vault:
    try:
        return Vault(settings)
    except MissingKey as exc:
        raise BadSettings(str(exc)) from None


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()


async def _account_behind(base: Deps, jwt: str, server_url: str) -> tuple[str, str]:
    """Ask RingCentral whose JWT this is: (account id, account name). Under a key scope of its
    own, so a JWT being checked never touches another account's token or budget."""
    probe = "unchecked-" + hashlib.sha256(jwt.encode()).hexdigest()[:16]
    settings = base.settings.for_account(probe, server_url=server_url, jwt=jwt)
    async with RingCentral(settings, base.redis) as client:
        try:
            account = await client.account()
        except RingCentralError as exc:
            raise Failure(f"RingCentral refused these credentials: {exc}") from None
    return account.id, account.main_number or account.id


async def start_account(d: Deps, account: Account, reason: str) -> str | None:
    """Create (or repair) the account's subscription and queue its resync; the subscription id,
    or None when no address is configured (the renewal cron does it later)."""
    scoped = await account_deps(d, account, max_wait=30.0)
    try:
        subscription = None
        try:
            outcome = await ensure_subscription(scoped)
            subscription = None if outcome.subscription is None else outcome.subscription.id
        except NotConfigured:
            pass
        except RingCentralError as exc:  # the renewal cron tries again every few minutes
            print(
                f"ringsync accounts: warning: no subscription yet ({exc}); the worker retries",
                file=sys.stderr,
            )
        await scoped.queue.enqueue(RESYNC, reason, job_id=scoped.settings.key("resync", reason))
        return subscription
    finally:
        await close(scoped)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    sealer = vault(settings)
    jwt = read_jwt(args)
    server_url = args.server_url or settings.rc_server_url

    async def add() -> dict[str, Any]:
        async with open_deps(settings) as d:
            account_id, named = await _account_behind(d, jwt, server_url)
            book = AccountStore(d.store)
            found = await book.get(account_id)
            if found is not None and found.is_default:
                raise Failure(f"account {account_id} is already the default (RC_* settings)")
            name = args.name or named
            account = await book.add(account_id, name, server_url, sealer.seal(jwt))
            if account is None:
                raise Failure(
                    f"account {account_id} is already added; new credentials: "
                    f"`ringsync accounts update {account_id} --jwt-file F`"
                )
            subscription = await start_account(d, account, "added")
            return {"account_id": account_id, "name": name, "subscription": subscription}

    added = asyncio.run(add())
    if args.json:
        _print_json(added)
    else:
        print(added["account_id"])
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    async def load() -> list[dict[str, Any]]:
        async with open_deps(settings) as d:
            return await account_rows(d.store)

    rows = asyncio.run(load())
    if args.json:
        for row in rows:
            _print_json(row)
        return 0
    for row in rows:
        flag = " (default)" if row["default"] else ""
        print(
            f"{row['account_id']}{flag}  {row['name']}  {row['state']}  {row['users']} users  "
            f"subscription {row['subscription'] or '-'}  last event {row['last_event'] or '-'}"
        )
    return 0


async def _stored(d: Deps, account_id: str) -> Account:
    found = await AccountStore(d.store).get(account_id)
    if found is None or found.state is AccountState.REMOVED:
        raise Failure(f"no account {account_id}; `ringsync accounts list` shows them")
    if found.is_default:
        raise BadSettings(
            f"account {account_id} is the default one: its credentials are the RC_* settings"
        )
    return found


def run_update(args: argparse.Namespace, settings: Settings) -> int:
    sealer = vault(settings)
    jwt = read_jwt(args)

    async def update() -> None:
        async with open_deps(settings) as d:
            found = await _stored(d, args.account)
            account_id, _ = await _account_behind(d, jwt, found.server_url)
            if account_id != found.account_id:
                raise Failure(f"this JWT is for account {account_id}, not {found.account_id}")
            book = AccountStore(d.store)
            await book.set_credentials(account_id, sealer.seal(jwt))
            # The old credentials' token and refusal are forgotten: the next call logs in anew;
            # so are the protected extensions (the new JWT's owner is protected at once).
            scoped = settings.for_account(account_id, server_url=found.server_url, jwt=jwt)
            await d.redis.delete(
                scoped.key("rc", "token"),
                scoped.key("rc", "token", "failure"),
                protection_key(scoped),
            )
            account = await book.get(account_id)
            if account is not None:
                await start_account(d, account, "credentials")

    asyncio.run(update())
    print(f"account {args.account} updated; a resync is queued")
    return 0


def run_remove(args: argparse.Namespace, settings: Settings) -> int:
    async def remove() -> list[str]:
        async with open_deps(settings) as d:
            found = await _stored(d, args.account)
            problems: list[str] = []
            try:
                scoped = await account_deps(d, found, max_wait=30.0)
            except (MissingKey, UnreadableCredentials) as exc:
                problems.append(str(exc))
            else:
                try:
                    for sub in await scoped.client.list_subscriptions():
                        if sub.delivery_mode.address == settings.webhook_url:
                            await scoped.client.delete_subscription(sub.id)
                            await d.redis.hdel(  # type: ignore[misc]
                                settings.root_key(*SUBSCRIPTION_ACCOUNTS), sub.id
                            )
                except RingCentralError as exc:
                    problems.append(f"its subscription could not be deleted: {exc}")
                finally:
                    await close(scoped)
            book = AccountStore(d.store)
            await book.remove(found.account_id)
            if args.purge:
                await book.purge(found.account_id)
            return problems

    for problem in asyncio.run(remove()):
        print(f"ringsync accounts remove: warning: {problem}", file=sys.stderr)
    print(f"account {args.account} removed" + (" and its mirror purged" if args.purge else ""))
    return 0


def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    sealer = vault(settings)

    async def rotate() -> int:
        async with open_deps(settings) as d:
            try:
                return await AccountStore(d.store).reseal_all(sealer.reseal)
            except UnreadableCredentials as exc:
                raise Failure(str(exc)) from None

    print(f"{asyncio.run(rotate())} credentials re-encrypted with the first key")
    return 0
