"""`ringsync db upgrade`: apply the identity store's migrations (start-up does it too)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from events.settings import Settings
from scripts.cli import Failure
from workers.store.identity import upgrade

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="manage the identity store")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade_parser = actions.add_parser("upgrade", help="apply every pending migration")
    upgrade_parser.set_defaults(run=run_upgrade)


def run_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    run_against_store(settings.database_url, upgrade(settings.database_url))
    print("identity store is up to date")
    return 0


def run_against_store(database_url: str, work: Awaitable[T]) -> T:
    """Run `work`; a database that cannot be reached or used becomes one clear `Failure`."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    async def main() -> T:
        return await work

    try:
        return asyncio.run(main())
    except (DBAPIError, OSError) as exc:
        where = make_url(database_url).render_as_string(hide_password=True)
        reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        first_line = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        raise Failure(f"cannot use the identity store at {where}: {first_line}") from exc
