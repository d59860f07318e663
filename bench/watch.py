"""The pipeline benchmark's eye on the mirror, in a process of its own.

    python -m bench.watch DATABASE_URL ACCOUNT_ID TAG EXPECTED SECONDS

Says ``ready`` once its first poll is done, then polls the mirror every 10 ms for the users of
ACCOUNT_ID whose last name is TAG until EXPECTED of them show it (or SECONDS pass), and prints
one line per user: ``<extension id> <unix time>``. A user's time is taken just before the first
poll that found it: late by up to one poll interval and a query, early by at most the moment
between that stamp and the query's snapshot. The benchmark's own process runs the sandbox and
the load; a poller there waited for their work (a 1,000-user page to serialise, a webhook to
send) and counted it as latency. Here it waits only for a core (pinned with the load under
`--pin`).
"""

from __future__ import annotations

import asyncio
import sys
import time

import sqlalchemy as sa

from bench.cpu import WATCH_APPLICATION
from workers.store.engine import create_engine, reading

POLL_EVERY = 0.01


async def watch(
    database_url: str, account_id: str, tag: str, expected: int, seconds: float
) -> None:
    engine = create_engine(database_url)
    query = sa.text("SELECT extension_id FROM users WHERE account_id = :a AND last_name = :t")
    seen: dict[str, float] = {}
    deadline = time.perf_counter() + seconds
    ready = False
    try:
        async with reading(engine) as conn:
            if engine.dialect.name == "postgresql":  # told apart from ringsync's (`bench.cpu`)
                await conn.execute(sa.text(f"SET application_name = '{WATCH_APPLICATION}'"))
            while len(seen) < expected and time.perf_counter() < deadline:
                polled = time.time()
                for (extension_id,) in await conn.execute(query, {"a": account_id, "t": tag}):
                    seen.setdefault(extension_id, polled)
                if engine.dialect.name == "sqlite":
                    await conn.commit()  # a fresh snapshot for the next poll
                if not ready:
                    ready = True
                    print("ready", flush=True)
                await asyncio.sleep(POLL_EVERY)
    finally:
        await engine.dispose()
    sys.stdout.write("".join(f"{ext} {at!r}\n" for ext, at in seen.items()))


def main() -> None:
    database_url, account_id, tag, expected, seconds = sys.argv[1:6]
    asyncio.run(watch(database_url, account_id, tag, int(expected), float(seconds)))


if __name__ == "__main__":
    main()
