"""Single reads or list pages? A pure choice by cost under the live rate-limit budget.

K dirty users cost K single reads (Light group); a listing costs ceil(N / 1000) pages (Medium
group) for an account of N users, whatever K is. Whichever finishes sooner under what is left of
each group's budget wins; when both would finish at once, the one using fewer requests. When
requests are plentiful (the reads would take a sliver of what is left of the Light window), the
choice is by work instead: a listing reads all N users to find K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class GroupState:
    remaining: int
    limit: int
    window: float
    available_in: float = 0.0


def seconds_to_send(requests: int, group: GroupState) -> float:
    """How long `requests` take in `group`: what fits now is free, the rest goes at its rate."""
    if requests <= 0:
        return 0.0
    rate = group.limit / group.window if group.window > 0 and group.limit > 0 else 0.0
    beyond = max(0, requests - max(group.remaining, 0))
    if beyond == 0:
        return group.available_in
    if rate == 0.0:
        return math.inf
    return group.available_in + beyond / rate


def pages_for(account_users: int) -> int:
    return max(1, math.ceil(account_users / PAGE_SIZE))


# When the budget lets every single read go at once, they are also the fastest way to converge
# (a listing rereads the whole account): list only when it saves a lot of requests.
MIN_SAVING = 2
MIN_DIRTY = 20
# The reads are a sliver of the budget when they would use at most this share of what is left.
SLIVER = 0.1
# A steady stream keeps a few dozen users dirty at a time; a bulk change marks hundreds at once
# (a notification names up to 500). From this many on, the choice is by requests again: a bulk
# change is one listing job, not thousands of single ones, however large the account.
STEADY_MAX = 100
# A single read (an HTTP exchange and a transaction) costs a worker as much CPU as this many
# users of a list page that did not change (parsed, compared, locked): `python -m bench.listing`
# measured 13 to 20 on SQLite and 21 to 33 on PostgreSQL across runs, without the job around a
# single read. Under a steady stream of changes to different users a listing would otherwise
# reread the whole account for a few of them, over and over.
LISTED_PER_READ = 25


def prefer_listing(dirty: int, account_users: int, light: GroupState, medium: GroupState) -> bool:
    """True when reading list pages beats `dirty` single reads."""
    pages = pages_for(account_users)
    if dirty <= pages:
        return False
    singles = (seconds_to_send(dirty, light), dirty)
    listing = (seconds_to_send(pages, medium), pages)
    if singles[0] == 0.0 and (dirty < MIN_DIRTY or dirty < MIN_SAVING * pages):
        return False
    plentiful = dirty <= light.remaining * SLIVER and dirty < STEADY_MAX
    if singles[0] == 0.0 and listing[0] == 0.0 and plentiful:
        return dirty * LISTED_PER_READ >= account_users
    return listing < singles
