"""`ringsync users` and `ringsync db upgrade` as people run them: real processes, real databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from workers.decide import Gone, Observation, Roles
from workers.store.identity import Store

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# The installed console script, exactly what people run.
RINGSYNC = str(Path(sys.executable).with_name("ringsync"))
CONTRACT = {
    "extension_id",
    "account_id",
    "email",
    "first_name",
    "last_name",
    "extension_number",
    "status",
    "state",
    "updated_at",
}


def ringsync(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "RINGSYNC_LOG_FORMAT": "json"}
    return subprocess.run(
        [RINGSYNC, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _populate(database_url: str, account_id: str) -> None:
    store = await Store.open(database_url)
    try:
        for number, status in (("101", "Enabled"), ("102", "Disabled"), ("103", "Enabled")):
            observation = Observation(
                read_at=T0,
                status=status,
                type="User",
                extension_number=number,
                first_name="Ada",
                last_name=f"No{number}",
                email=f"u{number}@example.com",
                admin=number == "101",
                site={"id": "7", "name": "Paris"} if number == "101" else None,
            )
            await store.reconcile(account_id, number, observation, "test")
        roles = Roles(T0, ({"id": "1", "name": "Super Admin"},))
        await store.reconcile(account_id, "101", roles, "test")
        await store.reconcile(account_id, "103", Gone(T0 + timedelta(minutes=1)), "test")
    finally:
        await store.close()


def _lines(stdout: str, account_id: str) -> list[dict[str, object]]:
    users = [orjson.loads(line) for line in stdout.splitlines()]
    return [user for user in users if user["account_id"] == account_id]


def test_users_json_lists_every_known_user(
    database_url: str, account_id: str, tmp_path: Path
) -> None:
    asyncio.run(_populate(database_url, account_id))

    result = ringsync(database_url, tmp_path, "users", "--json")

    assert result.returncode == 0, result.stderr
    users = {user["extension_id"]: user for user in _lines(result.stdout, account_id)}
    assert set(users) == {"101", "102", "103"}
    assert all(set(user) >= CONTRACT for user in users.values())
    assert (users["101"]["state"], users["101"]["status"]) == ("active", "Enabled")
    assert users["102"]["state"] == "suspended"
    assert users["103"]["state"] == "deprovisioned"
    assert users["103"]["email"] == "u103@example.com"
    assert users["103"]["updated_at"] == "2026-01-05T09:01:00+00:00"
    assert datetime.fromisoformat(str(users["101"]["updated_at"])) == T0
    # Who may do what: roles as `{id, name}` (null until read), the admin flag, the site.
    assert users["101"]["roles"] == [{"id": "1", "name": "Super Admin"}]
    assert (users["101"]["admin"], users["101"]["site"]) == (True, {"id": "7", "name": "Paris"})
    assert (users["102"]["roles"], users["102"]["admin"], users["102"]["site"]) == (
        None,
        False,
        None,
    )


def test_users_filters_by_state_and_prints_a_table(
    database_url: str, account_id: str, tmp_path: Path
) -> None:
    asyncio.run(_populate(database_url, account_id))

    suspended = ringsync(database_url, tmp_path, "users", "--state", "suspended", "--json")
    table = ringsync(database_url, tmp_path, "users")

    assert [u["extension_id"] for u in _lines(suspended.stdout, account_id)] == ["102"]
    assert table.returncode == 0, table.stderr
    assert "u101@example.com" in table.stdout
    assert "deprovisioned" in table.stdout


def test_users_with_an_unknown_state_is_bad_usage(sqlite_url: str, tmp_path: Path) -> None:
    assert ringsync(sqlite_url, tmp_path, "users", "--state", "asleep").returncode == 2


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    for url in (
        "postgresql+asyncpg://ringsync:hunter2@127.0.0.1:1/ringsync",
        f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'dir' / 'ringsync.db'}",
    ):
        for command in (("users", "--json"), ("db", "upgrade")):
            result = ringsync(url, tmp_path, *command)
            errors = [line for line in result.stderr.splitlines() if line.startswith("ringsync")]

            assert result.returncode == 1
            assert result.stdout == ""
            assert len(errors) == 1, result.stderr
            assert "cannot use the identity store" in errors[0]
            assert "Traceback" not in result.stderr
            assert "hunter2" not in result.stderr


def test_db_upgrade_prepares_an_empty_database(empty_database_url: str, tmp_path: Path) -> None:
    result = ringsync(empty_database_url, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "identity store is up to date"
    listed = ringsync(empty_database_url, tmp_path, "users", "--json")
    assert (listed.returncode, listed.stdout) == (0, "")
