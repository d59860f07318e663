"""Single reads or list pages: the cost choice, table-driven."""

from __future__ import annotations

import math

import pytest

from workers.batching import GroupState, pages_for, prefer_listing, seconds_to_send

FULL_LIGHT = GroupState(remaining=50, limit=50, window=60)
FULL_MEDIUM = GroupState(remaining=40, limit=40, window=60)
UNLIMITED = GroupState(remaining=1_000_000, limit=1_000_000, window=60)


@pytest.mark.parametrize(
    ("dirty", "users", "light", "medium", "listing"),
    [
        (1, 10_000, FULL_LIGHT, FULL_MEDIUM, False),  # one read beats ten pages
        (10, 10_000, FULL_LIGHT, FULL_MEDIUM, False),  # ten reads == ten pages: singles
        (19, 10_000, FULL_LIGHT, FULL_MEDIUM, False),  # reads that can all go now are faster
        (25, 10_000, FULL_LIGHT, FULL_MEDIUM, True),  # 25 reads vs 10 pages: list
        (100, 10_000, FULL_LIGHT, FULL_MEDIUM, True),
        (10_000, 10_000, FULL_LIGHT, FULL_MEDIUM, True),
        (3, 5, FULL_LIGHT, FULL_MEDIUM, False),  # a few reads beat rereading the account
        (20, 5, FULL_LIGHT, FULL_MEDIUM, True),  # a tiny account: one page
        (1, 5, FULL_LIGHT, FULL_MEDIUM, False),
        # Light exhausted: even a few reads wait a while, a page goes now.
        (5, 100, GroupState(0, 50, 60, available_in=20), FULL_MEDIUM, True),
        # Medium penalised for a minute, Light has room: single reads.
        (30, 10_000, FULL_LIGHT, GroupState(0, 40, 60, available_in=60), False),
        (200, 1_000, UNLIMITED, UNLIMITED, True),
        (15, 1_000, UNLIMITED, UNLIMITED, False),  # no limits: a few reads converge fastest
        (30, 20_000, UNLIMITED, UNLIMITED, False),  # 30 reads vs 20 pages: not worth it
        # Requests to spare: a steady stream's few dozen reads beat rereading 2,000 users...
        (60, 2_000, UNLIMITED, UNLIMITED, False),
        # ... but not once the listing is less work than the reads.
        (80, 2_000, UNLIMITED, UNLIMITED, True),
        (500, 100_000, UNLIMITED, UNLIMITED, True),  # a bulk change's first notification
        (99, 100_000, UNLIMITED, UNLIMITED, False),
        # The listing would wait out Medium's penalty; the reads can all go now.
        (80, 2_000, UNLIMITED, GroupState(0, 40, 60, available_in=30), False),
        # The same 60 reads would take more than a sliver of a real Light window: list.
        (60, 2_000, GroupState(remaining=100, limit=100, window=60), FULL_MEDIUM, True),
    ],
)
def test_prefer_listing(
    dirty: int, users: int, light: GroupState, medium: GroupState, listing: bool
) -> None:
    assert prefer_listing(dirty, users, light, medium) is listing


def test_seconds_to_send() -> None:
    assert seconds_to_send(0, FULL_LIGHT) == 0
    assert seconds_to_send(50, FULL_LIGHT) == 0
    assert seconds_to_send(100, FULL_LIGHT) == pytest.approx(60)
    assert seconds_to_send(1, GroupState(0, 0, 60)) == math.inf
    assert seconds_to_send(1, GroupState(0, 50, 60, available_in=5)) == pytest.approx(6.2)


def test_pages_for() -> None:
    assert [pages_for(n) for n in (0, 1, 1000, 1001, 100_000)] == [1, 1, 1, 2, 100]
