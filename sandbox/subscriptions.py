"""Webhook subscriptions: their state, how filters are normalised, and how they are shown.

RingCentral expands `~` in returned event filters to numeric ids, keeps the verification token
to itself, and forgets a subscription once it expires; a Blacklisted one stays dead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_EXPIRES_IN = 604_800  # what RingCentral has used when expiresIn is omitted
MAX_EXPIRES_IN = 315_360_000
MAX_PER_APP = 30

_ACCOUNT = re.compile(r"^/restapi/v1\.0/account/~(?=/|$)")
_EXTENSION = re.compile(r"^(/restapi/v1\.0/account/\d+/extension)/~(?=/|$)")


def normalise_filter(event_filter: str, account_id: str, owner_id: str) -> str:
    """Expand `~` in the account and extension positions, as RingCentral's responses do."""
    expanded = _ACCOUNT.sub(f"/restapi/v1.0/account/{account_id}", event_filter.strip())
    return _EXTENSION.sub(rf"\1/{owner_id}", expanded)


@dataclass
class Reminder:
    """A `/restapi/v1.0/subscription/~?threshold=S&interval=S` filter."""

    event_filter: str
    threshold: float
    interval: float


def parse_reminder(event_filter: str) -> Reminder | None:
    parts = urlsplit(event_filter)
    if parts.path != "/restapi/v1.0/subscription/~":
        return None
    query = parse_qs(parts.query)
    try:
        threshold = float(query.get("threshold", ["0"])[0])
        interval = float(query.get("interval", ["0"])[0])
    except ValueError:
        return None
    return Reminder(event_filter, threshold, interval) if threshold > 0 else None


@dataclass
class Subscription:
    id: str
    event_filters: list[str]
    address: str
    verification_token: str = field(repr=False)
    expires_in: int
    created_at: float
    expires_at: float
    status: str = "Active"
    blacklisted_at: float | None = None
    blacklist_reason: str = ""
    failures: int = 0
    reminder_slot: int = -1

    def active(self, now: float) -> bool:
        return self.status == "Active" and now < self.expires_at

    def reminder(self) -> Reminder | None:
        for event_filter in self.event_filters:
            found = parse_reminder(event_filter)
            if found is not None:
                return found
        return None

    def reminder_due(self, now: float) -> bool:
        """Whether a renewal reminder is due now (once per `interval` inside the threshold)."""
        reminder = self.reminder()
        if reminder is None or not self.active(now):
            return False
        start = self.expires_at - reminder.threshold
        if now < start:
            return False
        slot = int((now - start) // reminder.interval) if reminder.interval > 0 else 0
        if slot <= self.reminder_slot:
            return False
        self.reminder_slot = slot
        return True

    def blacklist(self, now: float, reason: str) -> None:
        if self.status != "Blacklisted":
            self.status = "Blacklisted"
            self.blacklisted_at = now
            self.blacklist_reason = reason

    def render(self, base: str, iso: Any, now: float) -> dict[str, Any]:
        """SubscriptionInfo; the verification token is write-only and never shown."""
        info: dict[str, Any] = {
            "uri": f"{base}/restapi/v1.0/subscription/{self.id}",
            "id": self.id,
            "eventFilters": list(self.event_filters),
            "creationTime": iso(self.created_at),
            "expirationTime": iso(self.expires_at),
            "expiresIn": max(1, math.floor(self.expires_at - now)),
            "status": self.status,
            "deliveryMode": {
                "transportType": "WebHook",
                "address": self.address,
                "encryption": False,
            },
        }
        if self.blacklisted_at is not None:
            info["blacklistedData"] = {
                "blacklistedAt": iso(self.blacklisted_at),
                "reason": self.blacklist_reason,
            }
        return info
