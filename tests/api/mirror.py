"""A seeded mirror for the API's tests, and what it must look like through SCIM, computed from
the seed alone (never read back through the code under test)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from scim2_models import Email, Meta, Name, User

from api.app import create_app
from events.settings import Settings
from tests.fixtures.receiver import serve_app
from workers.decide import Gone, Observation
from workers.store.identity import Store

API_TOKEN = secrets.token_urlsafe(32)
SCIM_TOKEN = secrets.token_urlsafe(32)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GONE_AFTER = timedelta(hours=1)
_FIRST = ["Ada", "bob", "CHARLIE", "Dana", "eve", "Frank", None, "Grace", "heidi", "Ivan"]
_LAST = ["Lovelace", "smith", None, "O'Neil", "Jones", "SMITH", "Brown", "x_y%z", "Li", "Stone"]
# RingCentral statuses → the states they map to; "gone" is a user deleted after being seen.
_STATUSES = ["Enabled", "Enabled", "Disabled", "NotActivated", "Frozen", "gone", "Enabled"]


@dataclass(frozen=True)
class Person:
    extension_id: str
    first: str | None
    last: str | None
    email: str | None
    status: str
    seen_at: datetime

    @property
    def state(self) -> str:
        return {
            "Enabled": "active",
            "NotActivated": "pending",
            "Disabled": "suspended",
            "Frozen": "suspended",
            "gone": "deprovisioned",
        }[self.status]

    @property
    def last_modified(self) -> datetime:
        return self.seen_at + (GONE_AFTER if self.status == "gone" else timedelta())

    def expected(self) -> User[Any]:
        """This person as a SCIM User, from the seed alone."""
        return User(
            id=self.extension_id,
            external_id=self.extension_id,
            user_name=self.email or self.extension_id,
            name=Name(given_name=self.first, family_name=self.last),
            emails=[Email(value=self.email, type="work", primary=True)] if self.email else None,
            active=self.state == "active",
            meta=Meta(last_modified=self.last_modified, created=self.seen_at),
        )


def people(count: int = 60) -> list[Person]:
    found = []
    for i in range(count):
        first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 3) % len(_LAST)]
        email = None if i % 11 == 7 else f"{(first or 'user')}.{i}@Example.COM"
        if i % 13 == 5:
            email = f"shared.{i}@example.org"
        found.append(
            Person(
                extension_id=str(1000 + i * 7),
                first=first,
                last=last,
                email=email,
                status=_STATUSES[i % len(_STATUSES)],
                seen_at=T0 + timedelta(minutes=i),
            )
        )
    return found


async def seed(store: Store, account_id: str, persons: list[Person]) -> None:
    """Write `persons` through the store's own write path, as reconciles do."""
    for person in persons:
        status = "Enabled" if person.status == "gone" else person.status
        seen = Observation(
            read_at=person.seen_at,
            status=status,
            type="User",
            first_name=person.first,
            last_name=person.last,
            email=person.email,
            extension_number=person.extension_id[-3:],
            department="Sales" if int(person.extension_id) % 2 else "Support",
        )
        await store.reconcile(account_id, person.extension_id, seen, "seed")
        if person.status == "gone":
            await store.reconcile(
                account_id, person.extension_id, Gone(person.seen_at + GONE_AFTER), "seed"
            )


def api_settings(settings: Settings, *, scim: bool = True) -> Settings:
    return settings.model_copy(
        update={
            "api_token": SecretStr(API_TOKEN),
            "scim_token": SecretStr(SCIM_TOKEN if scim else ""),
        }
    )


@contextlib.asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[str]:
    async with serve_app(create_app(settings)) as url:
        yield url
