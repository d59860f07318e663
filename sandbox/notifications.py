"""Turning user changes into notification envelopes for the subscriptions that asked for them.

Envelope: {uuid, event, timestamp, subscriptionId, ownerId, body}, with the numeric account id in
`event`. The Extension List body comes in the guide's shape (`extensions[]`, batched) or the
spec's flat shape (one notification per extension), selectable because real payloads vary.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.subscriptions import Subscription
from sandbox.users import User

BodyShape = Literal["guide", "spec"]
BATCH = 500  # extensions per guide-shaped notification


@dataclass(frozen=True)
class Change:
    """One user changed: a snapshot taken at the time, what happened, and hints."""

    user: User
    event_type: Literal["Create", "Update", "Delete"]
    hints: tuple[str, ...] = ("ExtensionInfo",)


@dataclass(frozen=True)
class Outgoing:
    subscription: Subscription
    envelope: dict[str, Any]


class Notifier:
    """Builds envelopes; knows the account and owner ids and the selected body shape."""

    def __init__(self, account_id: str, owner_id: str, iso: Callable[[], str]) -> None:
        self.account_id = account_id
        self.owner_id = owner_id
        self.iso = iso
        self.body_shape: BodyShape = "guide"

    @property
    def list_filter(self) -> str:
        return f"/restapi/v1.0/account/{self.account_id}/extension"

    @property
    def directory_filter(self) -> str:
        return f"/restapi/v1.0/account/{self.account_id}/directory/entries"

    def envelope(self, subscription: Subscription, event: str, body: Any) -> dict[str, Any]:
        return {
            "uuid": str(uuid.uuid4()),
            "event": event,
            "timestamp": self.iso(),
            "subscriptionId": subscription.id,
            "ownerId": self.owner_id,
            "body": body,
        }

    def build(
        self, subscriptions: Sequence[Subscription], changes: Sequence[Change]
    ) -> list[Outgoing]:
        out: list[Outgoing] = []
        for sub in subscriptions:
            filters = set(sub.event_filters)
            if self.list_filter in filters:
                out.extend(self._list_events(sub, changes))
            for change in changes:
                info = f"{self.list_filter}/{change.user.id}"
                if change.event_type != "Create" and info in filters:
                    body = {
                        "extensionId": change.user.id,
                        "eventType": change.event_type,
                        "hints": list(change.hints),
                        "ownerId": self.owner_id,
                    }
                    out.append(Outgoing(sub, self.envelope(sub, info, body)))
            if self.directory_filter in filters:
                for start in range(0, len(changes), BATCH):
                    contacts = [
                        c.user.directory_contact(c.event_type, self.account_id)
                        for c in changes[start : start + BATCH]
                    ]
                    directory = {"contacts": contacts}
                    out.append(Outgoing(sub, self.envelope(sub, self.directory_filter, directory)))
        return out

    def _list_events(self, sub: Subscription, changes: Sequence[Change]) -> list[Outgoing]:
        if self.body_shape == "spec":
            return [
                Outgoing(
                    sub,
                    self.envelope(
                        sub,
                        self.list_filter,
                        {
                            "extensionId": c.user.id,
                            "eventType": c.event_type,
                            "ownerId": self.owner_id,
                        },
                    ),
                )
                for c in changes
            ]
        out = []
        for start in range(0, len(changes), BATCH):
            entries = []
            for c in changes[start : start + BATCH]:
                entry: dict[str, Any] = {"extensionId": c.user.id, "eventType": c.event_type}
                if c.event_type == "Update":
                    entry["hints"] = list(c.hints)
                entries.append(entry)
            out.append(Outgoing(sub, self.envelope(sub, self.list_filter, {"extensions": entries})))
        return out

    def reminder(self, sub: Subscription, event_filter: str, info: dict[str, Any]) -> Outgoing:
        """The renewal reminder: the subscription's own info, sent before it expires."""
        return Outgoing(sub, self.envelope(sub, event_filter, info))
