"""How `ringsync status` reads on a terminal: one table of facts, then what needs a person."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def print_report(report: dict[str, Any]) -> None:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    table = Table(title="ringsync status", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value")
    queue = report["queue"]
    oldest = queue["oldest_age_seconds"]
    table.add_row(
        "queue",
        f"{queue['depth']} jobs ({queue['ready']} ready, {queue['deferred']} deferred, "
        f"{queue['in_progress']} in progress); oldest waiting "
        + ("-" if oldest is None else f"{oldest:.1f} s"),
    )
    last = report["last_event"]
    table.add_row(
        "last notification",
        "never" if last["at"] is None else f"{last['at']} ({last['age_seconds']:.0f} s ago)",
    )
    table.add_row("subscription", _subscription(report["subscription"]))
    gap = report["last_gap"]
    table.add_row(
        "last gap",
        "none" if gap is None else f"{gap['reason']} from {gap['started_at']} to {gap['ended_at']}",
    )
    dead = report["dead_letters"]
    by_job = ", ".join(f"{job}: {n}" for job, n in dead["by_job"].items())
    by_account = ", ".join(f"account {a}: {n}" for a, n in dead["by_account"].items())
    table.add_row(
        "dead letters",
        f"{dead['count']}" + (f" ({by_job}; {by_account})" if by_job else ""),
    )
    approvals = report["approvals"]
    plans = "; ".join(
        f"plan {p['plan_id']}: {p['deprovisions']} deprovisionings ({p['ratio']:.0%})"
        for p in approvals["plans"]
    )
    table.add_row("pending approvals", f"{approvals['pending']}" + (f" — {plans}" if plans else ""))
    actions = report["actions"]
    shown = ", ".join(f"{n} {state}" for state, n in actions.items() if n and state != "waiting")
    held = f" — {actions['waiting']} wait for the hourly cap" if actions["waiting"] else ""
    table.add_row("actions", (shown or "none") + held)
    for group, budget in report["rate_limits"].items():
        penalty = " (penalised)" if budget.get("penalty_until") else ""
        table.add_row(
            f"budget {group}",
            f"{budget['remaining']}/{budget['limit']} per {budget['window']:.0f} s{penalty}",
        )
    table.add_row("deliveries", _flat(report["deliveries"]))
    blocked = report["blocked"]
    for hold in blocked["holds"]:
        line = (
            f"user {hold['extension_id']} (account {hold['account_id']}) at {hold['endpoint']}:"
            f" {hold['waiting']} events wait behind dead delivery {hold['delivery_id']}"
            f" ({hold['type']}): {hold['reason']}"
        )
        table.add_row("blocked", escape(line))
    if blocked["count"] > len(blocked["holds"]):
        table.add_row("blocked", f"… and {blocked['count'] - len(blocked['holds'])} more")
    console.print(table)
    if report["attention"]:
        console.print("[bold red]needs a look:[/] " + "; ".join(report["attention"]))
    else:
        console.print("[green]all good[/]")


def _subscription(sub: Any) -> str:
    if not isinstance(sub, dict):
        return str(sub)
    parts = [str(sub.get("status", "unknown"))]
    for key in ("id", "expires_at", "expiration_time", "remaining_seconds"):
        if sub.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {sub[key]}")
    return ", ".join(parts)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
    return str(value)
