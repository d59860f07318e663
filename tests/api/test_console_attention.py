"""Which accounts the console says need a look, in what order, and how long it keeps them."""

from __future__ import annotations

from api.console.facts import attention
from api.console.kept import Kept
from api.console.queries import Listed


def account(account_id: str, state: str = "active", reason: str | None = None) -> Listed:
    return Listed(account_id, f"name {account_id}", state, reason, False, "https://rc")


def sub(status: str, expired: bool = False) -> tuple[str, bool]:
    return (status, expired)


def test_worst_first_and_the_healthy_left_out() -> None:
    listed = [
        account("1"),
        account("2"),
        account("3", "failing", "the token endpoint refused the JWT"),
        account("4"),
        account("5"),
        account("6"),
    ]
    subs = {
        "1": sub("Active"),
        "2": sub("Active"),
        "3": sub("Active"),
        "4": sub("Blacklisted"),
        "6": sub("Active", expired=True),
    }
    waiting = {"2": {"proposed actions": 2, "held plans": 1}, "4": {"held plans": 1}}

    found = [(a.account_id, reasons) for a, reasons in attention(listed, subs, waiting)]

    assert found == [
        ("3", ["failing: the token endpoint refused the JWT"]),
        ("4", ["subscription Blacklisted", "held plans waiting: 1"]),
        ("5", ["no subscription"]),
        ("6", ["subscription expired"]),
        ("2", ["held plans waiting: 1", "proposed actions waiting: 2"]),
    ]


def test_the_overview_is_kept_for_its_ttl_and_forgotten_on_demand() -> None:
    kept: Kept[str] = Kept(ttl=60.0)
    assert kept.get() is None
    assert kept.keep("read") == "read"
    assert kept.get() == "read"
    kept.forget()
    assert kept.get() is None
    stale: Kept[str] = Kept(ttl=0.0)
    stale.keep("read")
    assert stale.get() is None
