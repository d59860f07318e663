"""`ringsync sandbox [--port 8090] [--users N] [--accounts N] [--rate-limits default|off|FILE.json]
[--host H]`: the RingCentral look-alike, with the RC_* credentials from ringsync's own settings."""

from __future__ import annotations

import argparse

from events.settings import Settings
from sandbox import command
from scripts.cli import Failure


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sandbox", help="run the RingCentral look-alike")
    command.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    credentials = {
        "RC_APP_CLIENT_ID": settings.rc_client_id,
        "RC_APP_CLIENT_SECRET": settings.rc_client_secret.get_secret_value(),
        "RC_USER_JWT": settings.rc_jwt.get_secret_value(),
    }
    try:
        return command.serve(args, credentials)
    except command.UsageError as exc:
        raise Failure(str(exc)) from exc
