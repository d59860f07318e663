"""API economy: what a bulk change costs in RingCentral requests, against the cheapest possible.

    python -m bench.economy [--quick] [--json FILE]

A 10,000-user account (sandbox at RingCentral's default limits: Light 50/min, Medium 40/min),
mirrored once by a resync; then K ∈ {1, 100, 10,000} users, drawn at random, change at once.
Measured: the extension reads ringsync sends until the mirror shows all K changes, and the wall
time until then. Floor: min(K single reads at 50/min, ⌈N/1000⌉ list pages at 40/min), counted
from a fresh rate-limit window. Goal: requests within 1.2× the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.stack import postgres_available, running_stack

ACCOUNT_USERS = 10_000
SINGLE = re.compile(r"^/restapi/v1\.0/account/[^/]+/extension/[^/?]+$")
LISTING = re.compile(r"^/restapi/v1\.0/account/[^/]+/extension/?$")
LIGHT_PER_MIN, MEDIUM_PER_MIN, PAGE = 50, 40, 1000


@dataclass
class Economy:
    changed: int
    single_reads: int
    list_pages: int
    requests: int
    floor_requests: int
    ratio: float
    seconds: float
    floor_seconds: float
    rate_limited: int


def floor(changed: int, users: int) -> tuple[int, float]:
    """The cheapest way to learn about `changed` users: (requests, seconds) from a fresh window."""
    pages = math.ceil(users / PAGE)
    singles = (changed, max(0, changed - LIGHT_PER_MIN) / LIGHT_PER_MIN * 60)
    listing = (pages, max(0, pages - MEDIUM_PER_MIN) / MEDIUM_PER_MIN * 60)
    return min(singles, listing, key=lambda option: (option[1], option[0]))


async def measure(changed: int, users: int, database: str) -> Economy:
    async with running_stack(
        database_kind=database, users=users, workers=1, rate_limits="default"
    ) as stack:
        world = stack.sandbox.world
        before = len(world.log.calls)  # far below the log's bound of 200,000 calls
        tag = f"econ{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        # Users spread over the whole list, not its first pages (a listing may stop early).
        ids = random.Random(changed).sample([u.id for u in world.ordered()], changed)
        world.bulk_update(ids, last_name=tag)
        await stack.wait_for(tag, changed, within=900)
        seconds = time.perf_counter() - started
        calls = [call.as_dict() for call in list(world.log.calls)[before:]]
    reads = [c for c in calls if c["method"] == "GET"]
    singles = sum(1 for c in reads if SINGLE.match(c["path"]) and c["status"] < 400)
    pages = sum(1 for c in reads if LISTING.match(c["path"]) and c["status"] < 400)
    limited = sum(1 for c in calls if c["status"] == 429)
    floor_requests, floor_seconds = floor(changed, users)
    return Economy(
        changed=changed,
        single_reads=singles,
        list_pages=pages,
        requests=singles + pages,
        floor_requests=floor_requests,
        ratio=(singles + pages) / floor_requests,
        seconds=seconds,
        floor_seconds=floor_seconds,
        rate_limited=limited,
    )


async def run(quick: bool) -> dict[str, Any]:
    database = "postgres" if await postgres_available() else "sqlite"
    results = []
    for changed in (1, 100, 10_000):
        result = await measure(changed, ACCOUNT_USERS, database)
        results.append(result)
        print(
            f"K={changed:>6}: {result.single_reads} single reads + {result.list_pages} pages "
            f"= {result.requests} (floor {result.floor_requests}, {result.ratio:.2f}x), "
            f"{result.seconds:.1f} s (floor {result.floor_seconds:.0f} s), "
            f"429s {result.rate_limited}",
            flush=True,
        )
    return {
        "account_users": ACCOUNT_USERS,
        "database": database,
        "results": [asdict(r) for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.economy", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="accepted for symmetry; same run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = asyncio.run(run(args.quick))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
