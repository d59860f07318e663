"""The `ringsync` command: one sub-command per module, each registering its own arguments.

Exit codes: 0 ok; 1 failure (or, for `status`, "a human should look"); 2 bad usage or bad
settings. Expected failures raise `Failure` (or a connection error), a setting a command cannot
do without raises `BadSettings`; each prints one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from pydantic import ValidationError

from events.logs import configure_logging
from events.secret_checks import HOW_TO_MAKE_ONE
from events.settings import Settings

# Each module defines `register(subparsers)`, which adds its parser and sets `run`.
COMMAND_MODULES = (
    "scripts.serve",
    "scripts.api",
    "scripts.worker",
    "scripts.users",
    "scripts.subscribe",
    "scripts.db",
    "scripts.sandbox",
    "scripts.resync",
    "scripts.replay",
    "scripts.status",
    "scripts.demo",
    "scripts.accounts",
    "scripts.actions",
)


class Failure(Exception):
    """An expected failure: its message is printed as one line and the exit code is 1."""


class BadSettings(Exception):
    """A setting this command cannot do without is missing: one line naming it, exit 2."""


def require_verification_token(settings: Settings) -> None:
    """Without the token anyone could post notifications: `serve` and `subscribe` refuse."""
    if not settings.verification_token.get_secret_value():
        raise BadSettings(
            f"RINGSYNC_VERIFICATION_TOKEN is not set; {HOW_TO_MAKE_ONE} and give the same value "
            "to `ringsync serve` and `ringsync subscribe`"
        )


class Command(Protocol):
    def __call__(self, args: argparse.Namespace, settings: Settings) -> int: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ringsync", description="A live mirror of a RingCentral account's users."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
            importlib.import_module(name).register
        )
        register(subparsers)
    return parser


def _settings_problems(exc: ValidationError) -> str:
    """Every problem on one line, each naming its setting (never showing a value)."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def _expected_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    errors: list[type[BaseException]] = [RedisConnectionError, RedisTimeoutError, OSError]
    try:
        from sqlalchemy.exc import OperationalError

        errors.append(OperationalError)
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"ringsync: bad settings: {_settings_problems(exc)}", file=sys.stderr)
        return 2
    configure_logging(settings)
    run: Command = args.run
    try:
        return run(args, settings)
    except Failure as exc:
        print(f"ringsync {args.command}: {exc}", file=sys.stderr)
        return 1
    except BadSettings as exc:
        print(f"ringsync {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except _expected_errors() as exc:
        logging.getLogger("ringsync").debug("command failed", exc_info=True)
        print(f"ringsync {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Under `python -m`, this file is `__main__`; commands raise `scripts.cli.Failure`, so run
    # the imported module's `main`, whose `Failure` is the same class.
    from scripts.cli import main as imported_main

    sys.exit(imported_main())
