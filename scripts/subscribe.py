"""`ringsync subscribe [--json]`: create, renew or repair our subscription now, as the cron does."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from events.settings import Settings
from scripts.cli import Failure, require_verification_token
from scripts.connections import account_argument, open_account_deps
from workers.lock import LockTimeout
from workers.ringcentral.errors import ApiError
from workers.subscription.renewal import Outcome, ensure_subscription

MISSING_ADDRESS = (
    "RINGSYNC_WEBHOOK_URL is not set: the public address of `ringsync serve`'s /webhook"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "subscribe", help="create, renew or repair the webhook subscription now"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    account_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_verification_token(settings)
    if not settings.webhook_url:
        raise Failure(MISSING_ADDRESS)
    outcome = asyncio.run(_ensure(settings, args.account))
    shown = as_json(outcome)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(shown, option=orjson.OPT_APPEND_NEWLINE))
        sys.stdout.flush()
        return 0
    left = shown["remaining_seconds"]
    print(
        f"subscription {shown['id']} {shown['status']}, expires {shown['expires_at']}"
        + ("" if left is None else f" (in {_duration(left)})")
        + f"; {shown['action']}: {shown['reason']}"
    )
    if outcome.gap is not None:
        print(f"gap recorded ({outcome.gap}); full resync queued: {outcome.resync_queued}")
    return 0


async def _ensure(settings: Settings, account: str | None = None) -> Outcome:
    async with open_account_deps(settings, account) as d:
        try:
            return await ensure_subscription(d)
        except ApiError as exc:
            if exc.error_code == "SUB-525":
                raise Failure(
                    f"RingCentral could not verify {settings.webhook_url} (SUB-525: "
                    f"{_first_line(exc)}); the receiver there must answer the Validation-Token "
                    "handshake: is `ringsync serve` reachable at that address?"
                ) from None
            raise Failure(f"RingCentral refused: {exc}") from None
        except LockTimeout:
            raise Failure("another subscription check is still running; try again") from None


def _first_line(exc: ApiError) -> str:
    """RingCentral's own words after the status and code, e.g. what the handshake lacked."""
    text = str(exc).split("SUB-525", 1)[-1].strip()
    return (text.splitlines() or ["handshake failed"])[0]


def as_json(outcome: Outcome) -> dict[str, Any]:
    sub = outcome.subscription
    expires = outcome.expires_at
    left = None
    if expires is not None:
        left = max(0, int((expires - datetime.now(UTC)).total_seconds()))
    return {
        "id": None if sub is None else sub.id,
        "status": None if sub is None else sub.status,
        "address": None if sub is None else sub.delivery_mode.address,
        "event_filters": [] if sub is None else list(sub.event_filters),
        "expires_at": None if expires is None else expires.isoformat(timespec="seconds"),
        "remaining_seconds": left,
        "action": outcome.action.value,
        "reason": outcome.reason,
        "deleted": list(outcome.deleted),
        "gap": outcome.gap,
        "resync_queued": outcome.resync_queued,
    }


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {rest % 60}s"
