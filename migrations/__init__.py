"""Alembic migrations for the identity store, configured in code (no alembic.ini at run time).

`workers.store.engine.upgrade(url)` is the way to apply them: it takes the cross-process lock and
hands its connection to `run_upgrade`. The revisions import nothing of the application's (their
column types live, frozen, in `migrations.types`), so the application depends on this package and
never the reverse. A developer who changed `workers.store.tables` writes the next revision with

    python -c 'import migrations as m, workers.store.tables as t; m.write_revision("x", t.metadata)'

(x says what changed), then reads it through before committing it.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "head"

log = logging.getLogger(__name__)


def _quiet_alembic() -> None:
    # Alembic narrates every start-up at INFO (some of it while being imported); one line of our
    # own says what matters.
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def expression_indexes_unreflected() -> Iterator[None]:
    """Compare schemas without the warnings about SQLite's expression indexes.

    SQLAlchemy cannot reflect them from SQLite and autogenerate skips them there, so such an index
    is written into its revision by hand (as `scim_lookup` does) and checked by name.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        yield


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


def write_revision(message: str, target_metadata: MetaData, directory: Path | None = None) -> Path:
    """Write the next revision: what `target_metadata` has that the newest revision lacks.

    It compares with a scratch SQLite database brought to the newest revision, and writes into
    `versions/` (or into `directory`). Autogenerate misses some changes (renames, server
    defaults); read the result.
    """
    from alembic import command
    from alembic.script import Script

    with tempfile.TemporaryDirectory() as scratch:
        cfg = config(f"sqlite+aiosqlite:///{Path(scratch) / 'head.db'}")
        command.upgrade(cfg, HEAD)
        cfg.set_main_option("file_template", "%%(rev)s")
        if directory is not None:
            versions = Path(__file__).parent / "versions"
            cfg.set_main_option(
                "version_locations", os.pathsep.join((str(versions), str(directory)))
            )
        cfg.attributes["target_metadata"] = target_metadata
        with expression_indexes_unreflected():
            script = command.revision(
                cfg,
                message,
                autogenerate=True,
                # Named after what it adds: a number would collide with one written beside it.
                rev_id=re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_"),
                version_path=None if directory is None else str(directory),
            )
    assert isinstance(script, Script)  # one revision, on one head
    return Path(script.path)
