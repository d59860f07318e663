"""Re-running stored work: notifications in a time range, one user, dead-lettered jobs.

Replaying a notification does not go through the receiver's uuid dedup (that would make it a
no-op): its stored body is expanded to extension ids again and their reconciles are scheduled
through the coalescer, like fresh changes. Reconciles read the current state, so replaying
twice changes nothing the second time. The jobs run on the worker and spend the shared
rate-limit budget like any other.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import pydantic
from sqlalchemy import and_, select

from events.models import Notification
from events.queue import DELIVER, INGEST, RECONCILE, RECONCILE_BATCH, RESYNC
from workers.accounts.registry import acting_for
from workers.accounts.store import AccountState, AccountStore
from workers.context import Deps
from workers.ingest import schedule
from workers.store import tables
from workers.store.identity import DeadLetter

log = logging.getLogger(__name__)

# Dead-lettered jobs re-enqueued with their stored keyword arguments.
REENQUEUED: Final = frozenset({RECONCILE, RECONCILE_BATCH, RESYNC})


@dataclass
class Replayed:
    """What a replay found and scheduled (or, dry, would schedule)."""

    notifications: int = 0
    extension_ids: list[str] = field(default_factory=list)
    scheduled: int = 0
    dead_letters: int = 0
    skipped: list[str] = field(default_factory=list)


async def stored_notifications(
    d: Deps, since: datetime, until: datetime | None, kind: str | None
) -> tuple[int, list[str]]:
    """Notifications received in [since, until) re-expanded: (how many, extension ids)."""
    events = tables.events
    query = select(events.c.uuid, events.c.body).where(events.c.received_at >= since)
    if until is not None:
        query = query.where(events.c.received_at < until)
    found = 0
    ids: dict[str, None] = {}
    async with d.store.engine.connect() as conn:
        result = await conn.stream(query.order_by(events.c.id).execution_options(yield_per=1000))
        async for row in result:
            notification = _parse(row.uuid, row.body)
            if notification is None or (kind is not None and notification.kind.value != kind):
                continue
            found += 1
            ids.update(dict.fromkeys(notification.extension_ids()))
    return found, list(ids)


def _parse(uuid: str, body: str) -> Notification | None:
    try:
        return Notification.model_validate_json(body)
    except pydantic.ValidationError:
        log.warning("stored notification no longer parses; skipped", extra={"uuid": uuid})
        return None


async def replay_users(d: Deps, extension_ids: Sequence[str], cause: str) -> int:
    """Schedule reconciles for these users (coalesced like fresh changes)."""
    if not extension_ids:
        return 0
    return await schedule(d, list(extension_ids), cause=cause)


async def replay_dead_letters(d: Deps, *, job: str | None, dry_run: bool) -> Replayed:
    """Re-run every dead letter not yet replayed (optionally one job kind); mark them replayed.

    `d` is the default account's Deps; each letter is re-run for the account its job acted for
    (that account's credentials, budget and queue), never for the default one instead.
    """
    replayed = Replayed()
    for letter in await d.store.list_dead_letters():
        if job is not None and letter.job != job:
            continue
        # A delivery never calls RingCentral and runs whatever its account's state (an
        # `account.removed` event must still reach downstream): the default's Deps send it.
        account_id = None if letter.job == DELIVER else letter.account_id
        async with _acting_for(d, account_id) as own:
            skipped = own if isinstance(own, str) else await _replay_letter(own, letter, dry_run)
        if skipped is not None:
            replayed.skipped.append(f"{letter.id}: {skipped}")
            continue
        replayed.dead_letters += 1
        if not dry_run:
            await d.store.mark_dead_letter_replayed(letter.id)
            log.info(
                "dead letter replayed",
                extra={"dead_letter": letter.id, "job": letter.job, "account": letter.account_id},
            )
    return replayed


@contextlib.asynccontextmanager
async def _acting_for(d: Deps, account_id: str | None) -> AsyncIterator[Deps | str]:
    """The Deps of the account a letter's job acted for (None: the default account's, `d`), or
    why its letters wait: a failing account's worker would skip the job, losing the letter."""
    if not account_id:
        yield d
        return
    found = await AccountStore(d.store).get(account_id)
    if found is not None and found.state is AccountState.FAILING:
        yield f"account {account_id} is failing (its credentials are refused)"
        return
    async with acting_for(d, account_id) as own:
        yield own if own is not None else f"account {account_id} is not mirrored"


async def _replay_letter(d: Deps, letter: DeadLetter, dry_run: bool) -> str | None:
    """Re-run one letter for its account (`d`); why it was skipped, or None."""
    arguments: dict[str, Any] = dict(letter.arguments or {})
    arguments.pop("account", None)  # `d`'s queue names the account
    if letter.job == INGEST:
        ids = await _ids_of_event(d, str(arguments.get("uuid", "")))
        if ids is None:
            return "notification not stored"
        if not dry_run:
            await replay_users(d, ids, cause=f"replay:dead-letter:{letter.id}")
    elif letter.job in REENQUEUED or letter.job in _known_jobs(d):
        if not dry_run:
            job_id = d.settings.key("replay", str(letter.id))
            await d.queue.enqueue(letter.job, job_id=job_id, **arguments)
    else:
        return f"unknown job {letter.job!r}"
    return None


def _known_jobs(d: Deps) -> frozenset[str]:
    from workers.main import functions

    return frozenset(f.name for f in functions(d.settings))


async def _ids_of_event(d: Deps, uuid: str) -> list[str] | None:
    events = tables.events
    query = select(events.c.body).where(and_(events.c.uuid == uuid))
    async with d.store.engine.connect() as conn:
        body = (await conn.execute(query)).scalar_one_or_none()
    if body is None:
        return None
    notification = _parse(uuid, body)
    return [] if notification is None else notification.extension_ids()
