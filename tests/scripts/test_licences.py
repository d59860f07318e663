"""`ringsync licences` and `ringsync users --inactive-for` as people run them: real processes, a
real store holding users of two accounts with and without activity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.scripts.test_users import ringsync
from workers.activity.store import ActivityStore, Cursor
from workers.decide import Observation
from workers.store.identity import Store

NOW = datetime.now(UTC).replace(microsecond=0)
FIELDS = {"account_id", "extension_id", "email", "state", "last_activity_at", "created_at"}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# extension id → (account, RingCentral status, days since the last call or None, days since
# creationTime or None when the mirror holds none)
PEOPLE = {
    "11": ("100", "Enabled", 40, 400),  # idle
    "12": ("100", "Enabled", 2, 400),  # active
    "13": ("100", "NotActivated", None, 90),  # never active, created long ago
    "14": ("100", "Enabled", None, 3),  # never active, but new
    "15": ("100", "Disabled", 90, 400),  # idle, but suspended: no licence to reclaim
    "16": ("100", "Enabled", None, None),  # never active, first mirrored long ago
    "21": ("200", "Enabled", 60, 400),  # another account's idle user
}
LONG_AGO = NOW - timedelta(days=300)


async def _populate(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        book = ActivityStore(store)
        for extension, (account, status, idle_days, age) in PEOPLE.items():
            raw = {} if age is None else {"creationTime": _iso(NOW - timedelta(days=age))}
            observation = Observation(
                read_at=LONG_AGO,
                status=status,
                type="User",
                email=f"u{extension}@example.com",
                raw=raw,
            )
            await store.reconcile(account, extension, observation, "test")
            if idle_days is not None:
                cursor = Cursor(date_from=LONG_AGO, date_to=NOW)
                latest = {extension: NOW - timedelta(days=idle_days)}
                await book.record_page(account, latest, cursor)
    finally:
        await store.close()


def test_the_licence_report_lists_exactly_the_idle_live_users(
    database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_populate(database_url))
    ran = ringsync(database_url, tmp_path, "licences", "--inactive-for", "30d", "--json")
    assert ran.returncode == 0, ran.stderr
    lines = [orjson.loads(line) for line in ran.stdout.splitlines()]
    assert [line["extension_id"] for line in lines] == ["11", "13", "16", "21"]
    assert all(set(line) == FIELDS for line in lines)
    by_id = {line["extension_id"]: line for line in lines}
    assert by_id["13"]["last_activity_at"] is None
    assert by_id["13"]["state"] == "pending"
    assert by_id["13"]["created_at"] == (NOW - timedelta(days=90)).isoformat()
    assert by_id["16"]["created_at"] == LONG_AGO.isoformat()  # when first mirrored
    assert by_id["11"]["last_activity_at"] == (NOW - timedelta(days=40)).isoformat()
    assert by_id["21"]["account_id"] == "200"
    assert "4 licences could be reclaimed; account 100: 3; account 200: 1" in ran.stderr

    wider = ringsync(database_url, tmp_path, "licences", "--inactive-for", "50d", "--json")
    assert [orjson.loads(x)["extension_id"] for x in wider.stdout.splitlines()] == [
        "13",
        "16",
        "21",
    ]
    human = ringsync(database_url, tmp_path, "licences")
    assert human.returncode == 0
    assert "4 licences could be reclaimed" in human.stdout
    bad = ringsync(database_url, tmp_path, "licences", "--inactive-for", "a month")
    assert bad.returncode == 2
    assert "30d" in bad.stderr


def test_users_carry_their_last_activity_and_filter_on_it(sqlite_url: str, tmp_path: Path) -> None:
    asyncio.run(_populate(sqlite_url))
    ran = ringsync(sqlite_url, tmp_path, "users", "--json")
    every = {x["extension_id"]: x for x in map(orjson.loads, ran.stdout.splitlines())}
    assert every["12"]["last_activity_at"] == (NOW - timedelta(days=2)).isoformat()
    assert every["14"]["last_activity_at"] is None
    idle = ringsync(sqlite_url, tmp_path, "users", "--inactive-for", "30d", "--json")
    assert [orjson.loads(x)["extension_id"] for x in idle.stdout.splitlines()] == [
        "11",
        "13",
        "15",
        "16",
        "21",
    ]
