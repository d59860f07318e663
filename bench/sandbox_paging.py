"""How fast the sandbox serves the extension list: 1,000-user pages over 100,000 seeded users.

Run: .venv/bin/python -m bench.sandbox_paging [--users 100000] [--rounds 3]
The sandbox and the client share one event loop (as in tests), so a round trip includes the
client's own work; the render-only figure is the server's share.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
import orjson

from sandbox.oauth import JWT_GRANT
from sandbox.server import SandboxServer

PER_PAGE = 1000


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


async def run(users: int, rounds: int) -> None:
    started = time.perf_counter()
    async with SandboxServer(users=users) as sb:
        print(f"seeded {users:,} users + started in {time.perf_counter() - started:.2f} s")
        async with httpx.AsyncClient(base_url=sb.url) as client:
            token = await client.post(
                "/restapi/oauth/token",
                auth=(sb.client_id, sb.client_secret),
                data={"grant_type": JWT_GRANT, "assertion": sb.jwt},
            )
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            for round_number in range(1, rounds + 1):
                timings: list[float] = []
                seen = 0
                url: str | None = f"/restapi/v1.0/account/~/extension?type=User&perPage={PER_PAGE}"
                while url:
                    begin = time.perf_counter()
                    response = await client.get(url)
                    page = orjson.loads(response.content)
                    timings.append(time.perf_counter() - begin)
                    seen += len(page["records"])
                    url = page["navigation"].get("nextPage", {}).get("uri")
                assert seen == users, (seen, users)
                ordered = sorted(timings)
                print(
                    f"round {round_number}: {len(timings)} pages, round trip per page: "
                    f"first {_ms(timings[0])}  median {_ms(statistics.median(timings))}  "
                    f"p95 {_ms(ordered[int(len(ordered) * 0.95) - 1])}  max {_ms(ordered[-1])}"
                )
        chunk = sb.world.ordered()[:PER_PAGE]
        begin = time.perf_counter()
        for _ in range(20):
            orjson.dumps([u.list_record(sb.url, sb.account_id) for u in chunk])
        render = (time.perf_counter() - begin) / 20
        print(f"render only (records + orjson) per 1,000-user page: {_ms(render)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.users, args.rounds))


if __name__ == "__main__":
    main()
