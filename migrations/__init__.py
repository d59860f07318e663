"""Alembic migrations for the identity store, configured in code (no alembic.ini at run time).

`workers.database.upgrade(url)` is the way to apply them: it takes the cross-process lock and
hands its connection to `run_upgrade`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "head"

log = logging.getLogger(__name__)


def _quiet_alembic() -> None:
    # Alembic narrates every start-up at INFO (some of it while being imported); one line of our
    # own says what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def config(database_url: str | None = None) -> Config:
    """Alembic's configuration for this package, optionally for a database URL."""
    _quiet_alembic()
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.set_main_option("path_separator", "os")
    if database_url:
        cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def run_upgrade(connection: Connection) -> None:
    """Upgrade to the newest revision on `connection`, inside the caller's transaction."""
    cfg = config()
    from alembic import command

    cfg.attributes["connection"] = connection
    before = current_revision(connection)
    command.upgrade(cfg, HEAD)
    after = current_revision(connection)
    if after != before:
        log.info("identity store migrated", extra={"from_revision": before, "to_revision": after})


def current_revision(connection: Connection) -> str | None:
    """The revision `connection`'s database is at (None before the first migration)."""
    _quiet_alembic()
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
