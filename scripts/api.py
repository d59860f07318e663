"""`ringsync api [--host 127.0.0.1] [--port 8001]`: the console, the API, SCIM and the metrics on
uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from events.secret_checks import API_TOKEN_LENGTH, HOW_TO_MAKE_ONE
from events.settings import Settings
from scripts.cli import BadSettings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "api", help="serve the console, the API, SCIM 2.0 and the metrics"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to bind (default 8001)")
    parser.set_defaults(run=serve)


def serve(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.api_token.get_secret_value():
        # Everything but /healthz needs it: an API without one would be an open door or useless.
        raise BadSettings(
            f"RINGSYNC_API_TOKEN is not set; {HOW_TO_MAKE_ONE} (at least {API_TOKEN_LENGTH} "
            "characters)"
        )
    # Imported here: every other command starts without SCIM's models.
    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0
