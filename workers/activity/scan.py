"""The activity scan: the account's call log, page by page, into `last_activity_at`.

Only the account-level log is read (`GET /restapi/v1.0/account/~/call-log`, Heavy, 1,000 records
a page), never one user's: a hundred thousand calls cost a hundred requests, not one per user. A
scan reads a fixed window: from the last complete scan's end minus an hour (RingCentral adds
records 15-30 s after a call, some later) or, the first time, RINGSYNC_ACTIVITY_BACKFILL_DAYS back,
up to when it began. Each page is folded and written with the cursor past it before the next is
asked for (see `workers.activity.store`), so memory holds one page and a stopped scan resumes at
its first unread page. With RINGSYNC_ACTIVITY_SMS, the users the log showed no call for then have
their newest outbound SMS in the window read (one Light request each), resumable the same way.
Every request goes through the account's client: its token, its budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from workers.activity.fold import fold
from workers.activity.store import ActivityStore, Cursor
from workers.context import Deps, listing_deps
from workers.failures import guarded
from workers.lock import RedisLock

log = logging.getLogger(__name__)

# Records can appear in the log after the scan that should have seen them has passed.
OVERLAP: Final = timedelta(hours=1)
PER_PAGE: Final = 1000
LOCK_TTL: Final = 60.0


class ScanRunning(RuntimeError):
    """Another scan of this account holds its lock."""


@dataclass(frozen=True)
class Summary:
    """What one scan (or the rest of a stopped one) did."""

    account_id: str
    date_from: datetime
    date_to: datetime
    resumed_at_page: int | None
    pages: int
    records: int
    users_moved: int
    texts_read: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "resumed_at_page": self.resumed_at_page,
            "pages": self.pages,
            "records": self.records,
            "users_moved": self.users_moved,
            "texts_read": self.texts_read,
        }


async def shared_now(d: Deps) -> datetime:
    """Redis's clock, the one every process shares (never this host's)."""
    seconds, micros = await d.redis.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, tz=UTC)


async def window(d: Deps, book: ActivityStore, account_id: str) -> tuple[Cursor, bool]:
    """The stopped scan's cursor (True: resumed), or a new scan's from the watermark."""
    found = await book.cursor(account_id)
    if found is not None:
        return found, True
    now = await shared_now(d)
    mark = await book.watermark(account_id)
    since = (
        now - timedelta(days=d.settings.activity_backfill_days) if mark is None else mark - OVERLAP
    )
    cursor = Cursor(date_from=since, date_to=now)
    await book.begin(account_id, cursor)
    return cursor, False


async def scan(
    d: Deps, *, per_page: int = PER_PAGE, on_page: Callable[[Cursor], None] | None = None
) -> Summary:
    """Read the call log's window to its end (or on from where a stopped scan stopped)."""
    account_id = await d.account_id()
    book = ActivityStore(d.store)
    lock = RedisLock(d.redis, d.settings.key("lock", "activity"), ttl=LOCK_TTL, wait=0)
    if not await lock.acquire():
        raise ScanRunning(f"another activity scan of account {account_id} is running")
    try:
        cursor, resumed = await window(d, book, account_id)
        first = cursor.next_page
        start = cursor.model_copy()
        moved = 0
        if not cursor.calls_done:
            cursor, moved = await _calls(d, book, account_id, cursor, per_page, on_page)
        texts = 0
        if d.settings.activity_sms:
            cursor, texts, by_text = await _texts(d, book, account_id, cursor)
            moved += by_text
        await book.finish(account_id, cursor)
    finally:
        await lock.release()
    pages, records = cursor.pages - start.pages, cursor.records - start.records
    log.info(
        "activity scanned",
        extra={"account": account_id, "pages": pages, "records": records, "moved": moved},
    )
    return Summary(
        account_id=account_id,
        date_from=cursor.date_from,
        date_to=cursor.date_to,
        resumed_at_page=first if resumed else None,
        pages=pages,
        records=records,
        users_moved=moved,
        texts_read=texts,
    )


async def _calls(
    d: Deps,
    book: ActivityStore,
    account_id: str,
    cursor: Cursor,
    per_page: int,
    on_page: Callable[[Cursor], None] | None,
) -> tuple[Cursor, int]:
    """The call log from the cursor's page to the end, each page stored with the cursor past it."""
    moved = 0
    pager = d.client.call_log(
        cursor.date_from, cursor.date_to, page=cursor.next_page, per_page=per_page
    )
    async for page in pager:
        number = page.paging.page or cursor.next_page
        following = page.navigation.next_page is not None and bool(page.records)
        cursor = cursor.model_copy(
            update={
                "next_page": number + 1,
                "pages": cursor.pages + 1,
                "records": cursor.records + len(page.records),
                "calls_done": not following,
            }
        )
        moved += await book.record_page(account_id, fold(page.records), cursor)
        if on_page is not None:
            on_page(cursor)
    return cursor, moved


async def _texts(
    d: Deps, book: ActivityStore, account_id: str, cursor: Cursor
) -> tuple[Cursor, int, int]:
    """Each live user without a call in the window: their newest outbound SMS in it."""
    read = moved = 0
    for extension_id in await book.without_calls(account_id, cursor.date_from, cursor.texts_after):
        sent = await d.client.latest_text(extension_id, cursor.date_from, cursor.date_to)
        cursor = cursor.model_copy(update={"texts_after": extension_id})
        moved += await book.record_page(account_id, {extension_id: sent} if sent else {}, cursor)
        read += 1
    return cursor, read, moved


async def scan_activity(ctx: dict[str, Any], reason: str = "schedule") -> str:
    """The worker's activity job (the daily cron, `ringsync activity` queues none: it scans)."""

    async def work() -> str:
        async with listing_deps(ctx) as d:
            try:
                summary = await scan(d)
            except ScanRunning:
                return "another scan is running"
        return f"{summary.pages} pages, {summary.records} calls, {summary.users_moved} users moved"

    return await guarded(ctx, "scan_activity", {"reason": reason}, work)
