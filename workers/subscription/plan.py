"""What to do about our webhook subscription: a pure decision, table-tested.

Given the row we stored, every subscription RingCentral lists, what the settings want and the
time, `decide` says: nothing, create, renew, update (PUT filters or lifetime) or re-create, which
subscriptions to delete and whether notifications may have been lost (a gap, repaired by a full
resync). `workers.subscription.renewal` carries the plan out under a deployment-wide lock.

"Ours" is the subscription whose address is RINGSYNC_WEBHOOK_URL. RingCentral never returns the
verification token, so we store its hash beside the row: a changed token means a re-create. With
no row at all (a fresh identity store) an Active subscription at our address is adopted with one
PUT, as carrying today's token; should it not, our receiver refuses its notifications, RingCentral
blacklists it, and the next check re-creates it and repairs the gap.

A working subscription is never deleted before its replacement exists: the new one is created
first (it has passed RingCentral's handshake once creation succeeds), then the one it replaces —
after a refused renew or update, a changed token or a changed address — is deleted. Should the
creation fail, the old one stays as it was and is still ours (its row untouched), and the next
check tries again. Dead ones (Blacklisted, Suspended) deliver nothing: they are deleted before
the creation, which also frees their slots among the 30 RingCentral allows per user and app.
For a moment two subscriptions may deliver to our address: harmless, as a notification only
says which users to re-read (and a repeated uuid is dropped at the receiver).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from events.settings import Settings
from workers.ringcentral.resources import Subscription
from workers.subscription.store import StoredSubscription

EXTENSION_LIST = "/restapi/v1.0/account/~/extension"
COMPANY_DIRECTORY = "/restapi/v1.0/account/~/directory/entries"
# A lifetime this close to the wanted one is the same: RingCentral reports whole seconds left.
TTL_TOLERANCE = 60

_OWNER = re.compile(r"/(account|extension)/(?:~|\d+)(?=/|\?|$)")
_SUBSCRIPTION = re.compile(r"^/restapi/v1\.0/subscription/[^/?]+(?=\?|$)")


class Action(StrEnum):
    NOTHING = "nothing"
    CREATE = "create"
    RENEW = "renew"
    UPDATE = "update"
    RECREATE = "recreate"


@dataclass(frozen=True)
class Wanted:
    """The subscription the settings ask for."""

    address: str
    token_hash: str
    event_filters: tuple[str, ...]
    expires_in: int
    renew_margin: int
    max_silence: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Wanted:
        return cls(
            address=settings.webhook_url,
            token_hash=token_hash(settings.verification_token.get_secret_value()),
            event_filters=event_filters(settings),
            expires_in=settings.subscription_ttl,
            renew_margin=settings.renew_margin,
            max_silence=settings.max_silence,
        )


@dataclass(frozen=True)
class Facts:
    """Everything the decision looks at, read just before it (under the lock)."""

    stored: StoredSubscription | None
    listed: Sequence[Subscription]
    now: datetime
    last_event_at: datetime | None = None
    last_gap_at: datetime | None = None
    has_users: bool = False


@dataclass(frozen=True)
class Plan:
    """What to do, in order: delete `delete_before`, act, delete `delete_after`, repair the gap."""

    action: Action
    reason: str
    target: Subscription | None = None  # the one renewed or updated (or left alone)
    delete_before: tuple[str, ...] = ()
    delete_after: tuple[str, ...] = ()
    gap: str | None = None
    gap_started_at: datetime | None = None
    remaining: float | None = None


def token_hash(token: str) -> str:
    """What we keep instead of the token: enough to notice it changed, useless to an attacker."""
    return hashlib.sha256(token.encode()).hexdigest()


def event_filters(settings: Settings) -> tuple[str, ...]:
    """Extension List, Company Directory when enabled, and the renewal reminder."""
    filters = [EXTENSION_LIST]
    if settings.directory_events:
        filters.append(COMPANY_DIRECTORY)
    if settings.renew_margin > 0:
        # Fires once every `interval` seconds once less than `threshold` seconds are left.
        filters.append(
            "/restapi/v1.0/subscription/~"
            f"?threshold={settings.renew_margin}&interval={settings.renew_every}"
        )
    return tuple(filters)


def normalise_filter(event_filter: str) -> str:
    """RingCentral returns filters with `~` expanded to numeric ids: fold them back to `~`."""
    folded = _OWNER.sub(lambda m: f"/{m.group(1)}/~", event_filter.strip())
    return _SUBSCRIPTION.sub("/restapi/v1.0/subscription/~", folded)


def same_filters(a: Sequence[str], b: Sequence[str]) -> bool:
    return {normalise_filter(f) for f in a} == {normalise_filter(f) for f in b}


def remaining(sub: Subscription, now: datetime) -> float | None:
    """Seconds of life left: the smaller of what `expirationTime` and `expiresIn` say.

    RingCentral's `expiresIn` is the seconds left at the read; taking the smaller of the two
    means neither our clock nor RingCentral's can make a renewal late.
    """
    left: list[float] = []
    if sub.expiration_time is not None:
        left.append((sub.expiration_time - now).total_seconds())
    if sub.expires_in is not None:
        left.append(float(sub.expires_in))
    return min(left) if left else None


def decide(facts: Facts, wanted: Wanted) -> Plan:
    """The one decision about our subscription; see the module docstring."""
    ours = [s for s in facts.listed if s.delivery_mode.address == wanted.address]
    kept = _keepable(facts.stored, ours, wanted)
    if kept is None:
        return _replace(facts, wanted, ours)
    stored, keep = kept
    left = remaining(keep, facts.now)
    gap, gap_start = _silence(facts, stored, wanted)

    def plan(action: Action, reason: str) -> Plan:
        extras = tuple(s.id for s in ours if s.id != keep.id)
        return Plan(action, reason, keep, (), extras, gap, gap_start, left)

    if not same_filters(keep.event_filters, wanted.event_filters):
        return plan(Action.UPDATE, "event filters changed")
    if stored.expires_in is None or abs(stored.expires_in - wanted.expires_in) > TTL_TOLERANCE:
        return plan(Action.UPDATE, "lifetime changed")
    if left is not None and left <= wanted.renew_margin:
        return plan(Action.RENEW, f"{int(left)} s left")
    return plan(Action.NOTHING, "active and current")


def after_failure(plan: Plan, facts: Facts, error: str) -> Plan:
    """A renew or update RingCentral refused (gone, or any other 4xx): re-create it instead.

    The refused one was Active when listed, so it is deleted only after its replacement exists.
    """
    replaced = ((plan.target.id,) if plan.target is not None else ()) + plan.delete_after
    before, after = _retire(replaced, facts.listed)
    return Plan(
        Action.RECREATE,
        f"{plan.action.value} failed: {error}",
        delete_before=before,
        delete_after=after,
        gap=f"{plan.action.value} failed",
        gap_started_at=_gap_start(facts),
    )


def _retire(
    ids: Sequence[str], listed: Sequence[Subscription]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split the subscriptions a replacement retires: dead ones go before it is created, working
    ones (and any we cannot see) only after."""
    dead = {s.id for s in listed if s.status != "Active"}
    before = tuple(i for i in ids if i in dead)
    return before, tuple(i for i in ids if i not in dead)


def _keepable(
    stored: StoredSubscription | None, ours: list[Subscription], wanted: Wanted
) -> tuple[StoredSubscription, Subscription] | None:
    """The stored subscription, if it is listed, Active, at our address and has our token."""
    if stored is None or stored.token_hash != wanted.token_hash:
        return None
    for sub in ours:
        if sub.id == stored.id and sub.status == "Active":
            return stored, sub
    return None


def _replace(facts: Facts, wanted: Wanted, ours: list[Subscription]) -> Plan:
    """No subscription of ours can be kept: create one, deleting what stands in the way."""
    stored = facts.stored
    listed_ids = {s.id for s in facts.listed}
    doomed = tuple(s.id for s in ours)
    moved = stored is not None and stored.address != wanted.address and stored.id in listed_ids
    if moved and stored is not None and stored.id not in doomed:
        doomed += (stored.id,)  # at the address we used before
    if stored is None:
        alive = sorted(
            (s for s in ours if s.status == "Active"),
            key=lambda s: remaining(s, facts.now) or 0.0,
            reverse=True,
        )
        if alive:
            others = tuple(s.id for s in ours if s.id != alive[0].id)
            left = remaining(alive[0], facts.now)
            return Plan(Action.UPDATE, "adopted", alive[0], (), others, remaining=left)
        if not ours:
            return Plan(Action.CREATE, "no subscription yet")
        reason = ours[0].status.lower()
        return Plan(
            Action.RECREATE,
            reason,
            delete_before=doomed,
            gap=reason,
            gap_started_at=_gap_start(facts),
        )
    reason = _why_not_kept(stored, ours, wanted, facts.now, listed_ids)
    before, after = _retire(doomed, facts.listed)
    return Plan(
        Action.RECREATE,
        reason,
        delete_before=before,
        delete_after=after,
        gap=reason,
        gap_started_at=_gap_start(facts),
    )


def _why_not_kept(
    stored: StoredSubscription,
    ours: list[Subscription],
    wanted: Wanted,
    now: datetime,
    listed_ids: set[str],
) -> str:
    if stored.address != wanted.address:
        return "address changed"
    if stored.token_hash != wanted.token_hash:
        return "token changed"
    for sub in ours:
        if sub.id == stored.id:
            return sub.status.lower()  # blacklisted, suspended
    if stored.id in listed_ids:  # listed under another address than we recorded
        return "address changed"
    if stored.deleted_at is not None:
        return "missing"
    if stored.expiration_time is not None and stored.expiration_time <= now:
        return "expired"
    return "missing"


def _gap_start(facts: Facts) -> datetime | None:
    """The last moment we know notifications arrived: the last event, else the last renewal."""
    if facts.last_event_at is not None:
        return facts.last_event_at
    stored = facts.stored
    if stored is None:
        return None
    return stored.renewed_at or stored.created_at


def _silence(
    facts: Facts, stored: StoredSubscription, wanted: Wanted
) -> tuple[str | None, datetime | None]:
    """No notification for longer than RINGSYNC_MAX_SILENCE while users exist is a gap too.

    Silence is counted from the last event, the last gap or the subscription's creation,
    whichever is latest, so one silence is reported once per RINGSYNC_MAX_SILENCE.
    """
    if not facts.has_users:
        return None, None
    marks = [stored.created_at, facts.last_event_at, facts.last_gap_at]
    since = max(m for m in marks if m is not None)
    if facts.now - since <= timedelta(seconds=wanted.max_silence):
        return None, None
    return "silence", facts.last_event_at or since
