"""The sandbox's world: one account, its users, subscriptions and tokens, and the control
methods tests use to change it. Every user change notifies the matching Active subscriptions.

Call the control methods from the event loop the server runs in; deliveries are background
tasks there, and `await world.drain()` waits until every pending one has been attempted.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sandbox.calls import CallLog
from sandbox.clock import Clock
from sandbox.delivery import Deliverer
from sandbox.faults import Faults
from sandbox.limits import RateLimiter
from sandbox.notifications import BodyShape, Change, Notifier
from sandbox.subscriptions import Subscription
from sandbox.tokens import Credentials, TokenStore
from sandbox.users import EDITABLE, ROLES, STATUSES, User

_FIRST = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim")
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
_DEPARTMENTS = ("Sales", "Support", "Engineering", "Finance", "Marketing")
_FIRST_EXTENSION = 101


class UnknownUser(KeyError):
    """No such extension (it never existed or was hard-deleted)."""


class World:
    """All sandbox state; the HTTP layers only read and change it through this object."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        credentials: Credentials | None = None,
        token_ttl: int = 3600,
        account_id: str | None = None,
        seed: int | None = None,
    ) -> None:
        self._random = random.Random(seed)
        self.account_id = account_id or str(
            self._random.randrange(10**11, 10**12 - 1000) // 1000 * 1000 + 4
        )
        self.owner_id = str(int(self.account_id) + 1000)
        # The main (operator) extension `GET /restapi/v1.0/account/~` names; the credential's
        # owner unless a test says otherwise (`set_operator`).
        self.operator_id = self.owner_id
        # Extension id -> (HTTP status, errorCode): writes to it fail so (`fail_writes`).
        self.write_failures: dict[str, tuple[int, str]] = {}
        self.credentials = credentials or Credentials.make()
        self.clock = Clock()
        self.limiter = limiter
        self.tokens = TokenStore(self.clock, token_ttl)
        self.log = CallLog()
        self.faults = Faults()
        self.notifier = Notifier(self.account_id, self.owner_id, lambda: self.clock.iso())
        self.subscriptions: dict[str, Subscription] = {}
        self.deliverer: Deliverer | None = None
        self.base_url = ""
        self._users: dict[str, User] = {}
        self._order: list[User] = []  # list order; the same objects as in _users
        self._next_id = int(self.owner_id) + 1000
        self._next_number = _FIRST_EXTENSION
        self.version = 0
        # Awaited after a request's reply is decided and before it is sent (tests hold reads).
        self.before_reply: Callable[[str], Awaitable[None]] | None = None
        # List page number -> users deleted right after the next such page is served.
        self._after_page: dict[int, list[str]] = {}

    # -- reading -------------------------------------------------------------------------
    def users(self) -> list[dict[str, Any]]:
        """The truth, in list order."""
        return [user.truth() for user in self._order]

    def user(self, extension_id: str) -> dict[str, Any]:
        return self._get(extension_id).truth()

    def find(self, extension_id: str) -> User | None:
        return self._users.get(str(extension_id))

    def ordered(self) -> list[User]:
        """All users in list order; the live list itself (no copy at 100,000 users): read only."""
        return self._order

    @property
    def calls(self) -> list[dict[str, Any]]:
        return [call.as_dict() for call in self.log.calls]

    def counters(self) -> dict[str, dict[str, int]]:
        return self.log.counters()

    # -- changing users -------------------------------------------------------------------
    def seed(self, n: int) -> list[str]:
        """Add `n` users at once, without notifications (the account as it already was)."""
        return [self._add(**self._invent()).id for _ in range(n)]

    def create_user(
        self,
        first_name: str | None = None,
        last_name: str | None = None,
        email: str | None = None,
        status: str = "Enabled",
        type: str = "User",
        department: str | None = None,
        extension_number: str | None = None,
        **fields: Any,
    ) -> str:
        invented = self._invent()
        user = self._add(
            first_name=first_name or invented["first_name"],
            last_name=last_name or invented["last_name"],
            email=email or invented["email"],
            status=status,
            type=type,
            department=invented["department"] if department is None else department,
            extension_number=extension_number,
            **fields,
        )
        self._emit([Change(self._snapshot(user), "Create")])
        return user.id

    def update_user(self, extension_id: str, **fields: Any) -> dict[str, Any]:
        user = self._get(extension_id)
        permissions = {"international_calling", "admin"}
        hints = ("Permissions",) if set(fields) <= permissions else ("ExtensionInfo",)
        self._apply(user, fields)
        self._emit([Change(self._snapshot(user), "Update", hints)])
        return user.truth()

    def set_admin(self, extension_id: str, admin: bool) -> dict[str, Any]:
        """Grant or take the admin permission: an Extension Info event hints `Permissions`."""
        if not isinstance(admin, bool):
            raise ValueError("admin is true or false")
        return self.update_user(extension_id, admin=admin)

    def assign_roles(self, extension_id: str, roles: list[str]) -> dict[str, Any]:
        """Replace the user's roles (ids of `ROLES`). RingCentral notifies nobody of this."""
        if not isinstance(roles, list) or not all(r in ROLES for r in roles):
            raise ValueError(f"roles is a list of role ids among {sorted(ROLES)}")
        user = self._get(extension_id)
        user.roles = list(dict.fromkeys(roles))
        user.modified = self.clock.now()
        self._touch()
        return user.truth()

    def disable(self, extension_id: str, reason: str = "Voluntarily") -> dict[str, Any]:
        return self.update_user(extension_id, status="Disabled", status_reason=reason)

    def freeze(self, extension_id: str) -> dict[str, Any]:
        return self.update_user(extension_id, status="Frozen")

    def enable(self, extension_id: str) -> dict[str, Any]:
        return self.update_user(extension_id, status="Enabled")

    def unassign(self, extension_id: str) -> dict[str, Any]:
        """What a SCIM delete leaves behind: an `Unassigned` extension without a number."""
        return self.update_user(extension_id, status="Unassigned")

    def delete(self, extension_id: str) -> str:
        """Hard delete: later reads are 404 CMN-102."""
        user = self._get(extension_id)
        del self._users[user.id]
        self._order.remove(user)
        self._touch()
        self._emit([Change(user, "Delete")])
        return user.id

    def delete_after_page(self, extension_id: str, page: int) -> dict[str, Any]:
        """Hard-delete the user right after the next extension list page `page` is served:
        everyone listed after it moves up a place, so a paged read that is under way skips one."""
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError("page must be a page number (1 or more)")
        user = self._get(extension_id)
        self._after_page.setdefault(page, []).append(user.id)
        return {"extension_id": user.id, "after_page": page}

    def page_served(self, page: int) -> None:
        """A list page was rendered: carry out the deletions waiting for it."""
        for extension_id in self._after_page.pop(page, []):
            if extension_id in self._users:
                self.delete(extension_id)

    def bulk_update(self, ids_or_count: Iterable[str] | int, **fields: Any) -> list[str]:
        """Change many users at once; notifications batch them as RingCentral does."""
        if isinstance(ids_or_count, int):
            ids = [user.id for user in self._order[:ids_or_count]]
        else:
            ids = [str(i) for i in ids_or_count]
        changes = []
        for extension_id in ids:
            user = self._get(extension_id)
            self._apply(user, dict(fields))
            changes.append(Change(self._snapshot(user), "Update"))
        self._emit(changes)
        return ids

    # -- time, faults, subscriptions -------------------------------------------------------
    def advance_clock(self, seconds: float) -> None:
        """Move the expiry clock: tokens and subscriptions age, reminders fire."""
        self.clock.advance(seconds)
        self.tick()

    def tick(self) -> None:
        """Send due renewal reminders and forget expired subscriptions."""
        now = self.clock.now()
        for sub in list(self.subscriptions.values()):
            if now >= sub.expires_at:
                del self.subscriptions[sub.id]
                continue
            reminder = sub.reminder()
            if reminder is not None and sub.reminder_due(now):
                info = sub.render(self.base_url, self.clock.iso, now)
                self._send([self.notifier.reminder(sub, reminder.event_filter, info)])

    def set_faults(self, **faults: Any) -> Faults:
        self.faults = Faults(**faults)
        return self.faults

    def set_body_shape(self, shape: BodyShape) -> None:
        if shape not in ("guide", "spec"):
            raise ValueError("body shape is 'guide' or 'spec'")
        self.notifier.body_shape = shape

    def blacklist(self, subscription_id: str, reason: str = "Blacklisted on command") -> None:
        self.subscriptions[subscription_id].blacklist(self.clock.now(), reason)

    def subscription(self, subscription_id: str) -> Subscription | None:
        sub = self.subscriptions.get(subscription_id)
        if sub is not None and self.clock.now() >= sub.expires_at:
            del self.subscriptions[subscription_id]
            return None
        return sub

    async def drain(self) -> None:
        """Wait until every pending delivery has been attempted."""
        if self.deliverer is not None:
            await self.deliverer.drain()

    # -- internals -------------------------------------------------------------------------
    def _invent(self) -> dict[str, Any]:
        n = self._next_id
        first = _FIRST[n % len(_FIRST)]
        last = _LAST[(n // len(_FIRST)) % len(_LAST)]
        return {
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}.{n}@example.com".lower(),
            "department": _DEPARTMENTS[n % len(_DEPARTMENTS)],
        }

    def add_owner(self, **fields: Any) -> str:
        """List the credential's own extension as a user (by default the sandbox does not)."""
        if self.find(self.owner_id) is None:
            self._add(id=self.owner_id, **{**self._invent(), **fields})
        return self.owner_id

    def set_operator(self, extension_id: str) -> str:
        self.operator_id = self._get(extension_id).id
        return self.operator_id

    def fail_writes(self, ids: list[str], status: int = 400, error_code: str = "CMN-408") -> None:
        """Make PUTs and bulk deletes of these extensions fail with RingCentral's error code."""
        for extension_id in ids:
            self.write_failures[str(extension_id)] = (int(status), str(error_code))

    def _add(
        self, *, extension_number: str | None = None, id: str | None = None, **fields: Any
    ) -> User:
        unknown = set(fields) - EDITABLE
        if unknown:
            raise TypeError(f"unknown user fields: {sorted(unknown)}")
        if fields.get("status", "Enabled") not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        user = User(
            id=id or str(self._next_id),
            extension_number=extension_number or str(self._next_number),
            creation_time=self.clock.iso(),
            modified=self.clock.now(),
            **fields,
        )
        if id is None:
            self._next_id += 1
        self._next_number += 1
        self._users[user.id] = user
        self._order.append(user)
        self._touch()
        return user

    def _apply(self, user: User, fields: dict[str, Any]) -> None:
        reason = fields.pop("status_reason", None)
        comment = fields.pop("status_comment", None)
        unknown = set(fields) - EDITABLE
        if unknown:
            raise TypeError(f"unknown user fields: {sorted(unknown)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        for name, value in fields.items():
            setattr(user, name, value)
        user.status_reason = reason if user.status == "Disabled" else None
        user.status_comment = comment if user.status == "Disabled" else None
        user.modified = self.clock.now()
        self._touch()

    def _get(self, extension_id: str) -> User:
        user = self._users.get(str(extension_id))
        if user is None:
            raise UnknownUser(extension_id)
        return user

    @staticmethod
    def _snapshot(user: User) -> User:
        snapshot = User(**{k: getattr(user, k) for k in user.__dataclass_fields__})
        snapshot.roles = list(user.roles)
        return snapshot

    def _touch(self) -> None:
        self.version += 1

    def _emit(self, changes: list[Change]) -> None:
        now = self.clock.now()
        live = [s for s in self.subscriptions.values() if s.active(now)]
        if live and changes:
            self._send(self.notifier.build(live, changes))

    def _send(self, outgoing: list[Any]) -> None:
        if self.deliverer is not None and outgoing:
            self.deliverer.schedule(outgoing)
