"""Running the look-alike as a process until interrupted: its arguments, and `python -m` on it.

It accepts the credentials in RC_APP_CLIENT_ID, RC_APP_CLIENT_SECRET and RC_USER_JWT, so ringsync
started with the same environment simply works; when they are unset it makes some up and prints
them (this is a local test server: printing its own invented credentials is the point).
`ringsync sandbox` runs the same `serve`, with the credentials from ringsync's settings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sandbox.limits import DEFAULT_WINDOW
from sandbox.server import SandboxServer

CREDENTIALS = ("RC_APP_CLIENT_ID", "RC_APP_CLIENT_SECRET", "RC_USER_JWT")


class UsageError(Exception):
    """A bad argument: its message is one line for the person who gave it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--users", type=int, default=0, metavar="N", help="seed N users")
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        metavar="N",
        help="serve N accounts, each with its own JWT, users, subscriptions and limits",
    )
    parser.add_argument(
        "--rate-limits",
        default="default",
        metavar="default|off|FILE.json",
        help='per-group requests per minute, e.g. {"light": 50, "medium": 40}',
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=DEFAULT_WINDOW,
        metavar="SECONDS",
        help="the rate limits' window (RingCentral's is 60 s; shorter ones speed benchmarks up)",
    )


def serve(args: argparse.Namespace, credentials: dict[str, str]) -> int:
    """Serve until SIGINT or SIGTERM, with the given (non-empty) credentials or invented ones."""
    limits = args.rate_limits
    if limits not in ("default", "off") and not Path(limits).is_file():
        raise UsageError(f"--rate-limits: no such file: {limits}")
    if args.accounts < 1:
        raise UsageError("--accounts: at least 1")
    if args.rate_window <= 0:
        raise UsageError("--rate-window: a positive number of seconds")
    try:
        server = SandboxServer(
            users=args.users,
            rate_limits=limits,
            rate_window=args.rate_window,
            host=args.host,
            port=args.port,
            client_id=credentials.get("RC_APP_CLIENT_ID") or None,
            client_secret=credentials.get("RC_APP_CLIENT_SECRET") or None,
            jwt=credentials.get("RC_USER_JWT") or None,
            accounts=args.accounts,
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--rate-limits {limits}: {exc}") from exc
    invented = [name for name in CREDENTIALS if not credentials.get(name)]
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(server, invented))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m` on this package: the credentials come from the environment."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}", description="Run the RingCentral look-alike."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args, {name: os.environ.get(name, "") for name in CREDENTIALS})
    except UsageError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(server: SandboxServer, invented: list[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        values = {
            "RC_APP_CLIENT_ID": server.client_id,
            "RC_APP_CLIENT_SECRET": server.client_secret,
            "RC_USER_JWT": server.jwt,
        }
        print(f"RC_SERVER_URL={server.url}", flush=True)
        for name in invented:
            print(f"{name}={values[name]}", flush=True)
        for world in server.worlds:
            print(f"# account {world.account_id}, {len(world.ordered())} users", flush=True)
        for world in server.worlds[1:]:
            # Further accounts of the same app: `ringsync accounts add --jwt-stdin` takes these.
            print(f"# account {world.account_id} RC_USER_JWT={world.credentials.jwt}", flush=True)
        await server.wait(stop)
