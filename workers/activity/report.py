"""The licence report: live users who used no licence for a while, judged purely.

A user in state `active` or `pending` is a reclaim candidate when their latest counting call is
older than the cutoff, or when they never made or answered one and their extension was created
before it (RingCentral's `creationTime`, else when the mirror first saw them): someone added last
week is new, not idle.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from workers.activity.store import ActivityStore, Candidate
from workers.store.identity import Store

_SPAN = re.compile(r"([1-9][0-9]{0,4})d")


def parse_span(value: str) -> timedelta:
    """`30d` → 30 days (whole days, 1 to 99,999); ValueError otherwise."""
    found = _SPAN.fullmatch(value.strip())
    if found is None:
        raise ValueError(f"{value!r} is not a number of days such as 30d")
    return timedelta(days=int(found.group(1)))


def idle(last_activity_at: datetime | None, created_at: datetime, cutoff: datetime) -> bool:
    """No counting call since `cutoff` (never-active users: created before it)."""
    if last_activity_at is not None:
        return last_activity_at < cutoff
    return created_at < cutoff


async def candidates(
    store: Store, cutoff: datetime, account_id: str | None = None
) -> list[Candidate]:
    """Every reclaim candidate, by account then extension id."""
    found = await ActivityStore(store).live_users(cutoff, account_id)
    return [c for c in found if idle(c.last_activity_at, c.created_at, cutoff)]


def candidate_json(candidate: Candidate) -> dict[str, Any]:
    """One line of `ringsync licences --json`."""
    last = candidate.last_activity_at
    return {
        "account_id": candidate.account_id,
        "extension_id": candidate.extension_id,
        "email": candidate.email,
        "state": candidate.state,
        "last_activity_at": None if last is None else last.isoformat(),
        "created_at": candidate.created_at.isoformat(),
    }
