"""The pure decisions about actions, table by table."""

from __future__ import annotations

import pytest

from workers.actions.decide import (
    Kind,
    Protection,
    Refuse,
    Run,
    Step,
    Subject,
    execution,
    may_approve,
    preflight,
    waiting,
)

FACTS = Protection(operator_id="1", owner_id="2")


def user(status: str | None = "Enabled", *, id: str = "101", type: str | None = "User",
         roles: tuple[str, ...] = ()) -> Subject:  # fmt: skip
    return Subject(extension_id=id, type=type, status=status, roles=roles)


@pytest.mark.parametrize(
    ("kind", "subject", "expected"),
    [
        (Kind.SUSPEND, user("Enabled"), Run((Step.SUSPEND,))),
        (Kind.SUSPEND, user("NotActivated"), Run((Step.SUSPEND,))),
        (Kind.SUSPEND, user("Disabled"), "status is Disabled"),
        (Kind.REACTIVATE, user("Disabled"), Run((Step.REACTIVATE,))),
        (Kind.REACTIVATE, user("Enabled"), "status is Enabled"),
        (Kind.DEPROVISION, user("Enabled"), Run((Step.SUSPEND, Step.DELETE))),
        (Kind.DEPROVISION, user("Disabled"), Run((Step.DELETE,))),
        (Kind.DEPROVISION, user("Frozen"), Run((Step.DELETE,))),
        (Kind.DEPROVISION, user("Unassigned"), "status is Unassigned"),
        (Kind.SUSPEND, user(type="Department"), "not a user"),
        (Kind.SUSPEND, user(id="1"), "operator"),
        (Kind.DEPROVISION, user(id="2"), "credential"),
        (Kind.SUSPEND, user(roles=("Standard", "Super Admin")), "Super Admin"),
        # Protection comes before the starting state: a protected user is always named so.
        (Kind.REACTIVATE, user("Enabled", id="1"), "operator"),
    ],
)  # fmt: skip
def test_preflight(kind: Kind, subject: Subject, expected: Run | str) -> None:
    _check(preflight(kind, subject, FACTS), expected)


def _check(found: Run | Refuse, expected: Run | str) -> None:
    """A `Run` is compared whole; a refusal by a phrase its reason must hold."""
    if isinstance(expected, Run):
        assert found == expected
    else:
        assert isinstance(found, Refuse), found
        assert expected in found.reason


@pytest.mark.parametrize(
    ("kind", "snapshot", "fresh", "resumed", "expected"),
    [
        # Unchanged since proposed: the steps.
        (Kind.SUSPEND, "Enabled", user("Enabled"), False, Run((Step.SUSPEND,))),
        (Kind.DEPROVISION, "Enabled", user("Enabled"), False, Run((Step.SUSPEND, Step.DELETE))),
        (Kind.DEPROVISION, "Disabled", user("Disabled"), False, Run((Step.DELETE,))),
        # Changed since proposed, the target state included: refused, nothing written.
        (Kind.SUSPEND, "Enabled", user("Disabled"), False, "status Enabled → Disabled"),
        (Kind.REACTIVATE, "Disabled", user("Enabled"), False, "status Disabled → Enabled"),
        (Kind.DEPROVISION, "Enabled", None, False, "no longer exists"),
        (Kind.SUSPEND, "Enabled", user(type="Limited"), False, "type User → Limited"),
        # Protected since proposed (a new Super Admin): refused again at execution.
        (Kind.SUSPEND, "Enabled", user(roles=("Super Admin",)), False, "Super Admin"),
        # A crashed attempt's write is visible: done without writing again.
        (Kind.SUSPEND, "Enabled", user("Disabled"), True, Run(())),
        (Kind.REACTIVATE, "Disabled", user("Enabled"), True, Run(())),
        (Kind.DEPROVISION, "Enabled", None, True, Run(())),
        (Kind.DEPROVISION, "Enabled", user("Unassigned"), True, Run(())),
        (Kind.DEPROVISION, "Enabled", user("Disabled"), True, Run((Step.DELETE,))),
        # A crashed attempt that wrote nothing: the normal checks and steps.
        (Kind.SUSPEND, "Enabled", user("Enabled"), True, Run((Step.SUSPEND,))),
        (Kind.SUSPEND, "Enabled", user("NotActivated"), True, "status Enabled → NotActivated"),
        # A resumed deprovision whose user became protected or changed type: never deleted.
        (Kind.DEPROVISION, "Enabled", user("Disabled", roles=("Super Admin",)), True, "Admin"),
        (Kind.DEPROVISION, "Enabled", user("Disabled", id="1"), True, "operator"),
        (Kind.DEPROVISION, "Enabled", user("Disabled", id="2"), True, "credential"),
        (Kind.DEPROVISION, "Enabled", user("Disabled", type="IvrMenu"), True, "→ IvrMenu"),
        (Kind.SUSPEND, "Enabled", user("Enabled", roles=("Super Admin",)), True, "Super Admin"),
    ],
)  # fmt: skip
def test_execution(
    kind: Kind, snapshot: str, fresh: Subject | None, resumed: bool, expected: Run | str
) -> None:
    _check(execution(kind, user(snapshot), fresh, FACTS, resumed=resumed), expected)


@pytest.mark.parametrize(
    ("fresh", "resumed", "expected"),
    [
        # Suspended, waiting for its delete: the delete, once the checks pass.
        (user("Disabled"), True, Run((Step.DELETE,))),
        (user("Disabled"), False, Run((Step.DELETE,))),
        (None, True, Run(())),
        # Reactivated by a person while the delete waited: failed, neither suspended nor deleted.
        (user("Enabled"), True, "reactivated while waiting"),
        (user("NotActivated"), False, "reactivated while waiting"),
        (user("Disabled", roles=("Super Admin",)), True, "Super Admin"),
    ],
)  # fmt: skip
def test_a_deprovision_whose_suspend_went_out(
    fresh: Subject | None, resumed: bool, expected: Run | str
) -> None:
    found = execution(
        Kind.DEPROVISION, user("Enabled"), fresh, FACTS, resumed=resumed, suspended=True
    )
    _check(found, expected)


@pytest.mark.parametrize(
    ("subject", "facts", "expected"),
    [
        # Unknown facts protect: no operator named, roles unreadable.
        (user(), Protection(operator_id=None, owner_id="2"), "operator extension is not known"),
        (Subject("101", "User", "Enabled", roles_known=False),
         FACTS, "roles could not be read"),
        # Super Admin by its role id, whatever its name says.
        (Subject("101", "User", "Enabled", roles=("",), role_ids=("1",)), FACTS, "Super Admin"),
    ],
)  # fmt: skip
def test_protection_fails_closed(subject: Subject, facts: Protection, expected: str) -> None:
    _check(preflight(Kind.SUSPEND, subject, facts), expected)
    _check(execution(Kind.SUSPEND, user(), subject, facts), expected)


@pytest.mark.parametrize(
    ("proposer", "approver", "allowed"),
    [
        ("ada", "bob", True),
        ("ada", "ada", False),
        ("Ada", " ada ", False),
        # "policy" approves only inside the gate; a blank name is nobody.
        ("ada", "policy", False),
        ("ada", " Policy ", False),
        ("ada", "", False),
        ("ada", "   ", False),
    ],
)
def test_the_approver_is_not_the_proposer(proposer: str, approver: str, allowed: bool) -> None:
    assert may_approve(proposer, approver) is allowed


@pytest.mark.parametrize(
    ("approved", "started", "cap", "held"),
    [(0, 0, 50, 0), (10, 0, 50, 0), (10, 45, 50, 5), (10, 50, 50, 10), (3, 60, 50, 3)],
)
def test_the_hourly_cap_holds_back_the_rest(
    approved: int, started: int, cap: int, held: int
) -> None:
    assert waiting(approved, started, cap) == held
