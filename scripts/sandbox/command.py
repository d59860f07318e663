"""`ringsync sandbox [--port 8090] [--users N] [--rate-limits default|off|FILE.json] [--host H]`:
run the RingCentral look-alike until interrupted.

It accepts the credentials in RC_APP_CLIENT_ID, RC_APP_CLIENT_SECRET and RC_USER_JWT, so ringsync
started with the same environment simply works; when they are unset it makes some up and prints
them (this is a local test server: printing its own invented credentials is the point).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from events.settings import Settings
from scripts.sandbox.server import SandboxServer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="run the RingCentral look-alike")
    add_arguments(parser)
    parser.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--users", type=int, default=0, metavar="N", help="seed N users")
    parser.add_argument(
        "--rate-limits",
        default="default",
        metavar="default|off|FILE.json",
        help='per-group requests per minute, e.g. {"light": 50, "medium": 40}',
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from scripts.cli import Failure

    limits = args.rate_limits
    if limits not in ("default", "off") and not Path(limits).is_file():
        raise Failure(f"--rate-limits: no such file: {limits}")
    try:
        server = SandboxServer(
            users=args.users,
            rate_limits=limits,
            host=args.host,
            port=args.port,
            client_id=settings.rc_client_id or None,
            client_secret=settings.rc_client_secret.get_secret_value() or None,
            jwt=settings.rc_jwt.get_secret_value() or None,
        )
    except (ValueError, TypeError) as exc:
        raise Failure(f"--rate-limits {limits}: {exc}") from exc
    given = {
        "RC_APP_CLIENT_ID": bool(settings.rc_client_id),
        "RC_APP_CLIENT_SECRET": bool(settings.rc_client_secret.get_secret_value()),
        "RC_USER_JWT": bool(settings.rc_jwt.get_secret_value()),
    }
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(server, [name for name, ok in given.items() if not ok]))
    return 0


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
        print(f"# account {server.account_id}, {len(server.world.ordered())} users", flush=True)
        await server.wait(stop)
