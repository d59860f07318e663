"""What a resync saw and did (or, dry, would do): counts, the safeguard's verdict, and a bounded
sample of the changes for people to read (`ringsync resync` prints it, `--json` dumps it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from workers.decide import Decision
from workers.lifecycle import EventType

# The report keeps this many changes; beyond that it only counts them (bounded memory).
CHANGE_LIMIT: Final = 500


@dataclass(frozen=True)
class Change:
    extension_id: str
    name: str
    before: str | None
    after: str | None
    events: list[str]
    fields: list[str]


@dataclass
class Summary:
    resync_id: str
    dry_run: bool = False
    # The held plan this run applies (`ringsync resync --approve PLAN_ID`); None for a resync.
    approved_plan: str | None = None
    account_id: str = ""
    baseline: bool = False
    live_before: int = 0
    listed: int = 0
    pages: int = 0
    complete: bool = False
    # Live users the complete listing did not show, each then read on its own, and how many of
    # those (or of an approved plan's users) that read found live: reconciled, not deprovisioned.
    absent: int = 0
    found_live: int = 0
    changed: int = 0
    deprovisioned: int = 0
    events: dict[str, int] = field(default_factory=dict)
    planned_deprovisions: int = 0
    ratio: float = 0.0
    limit: float = 0.0
    floor: int = 0
    held: int = 0
    plan_id: str | None = None
    would_hold: bool = False
    settled: int = 0
    changes: list[Change] = field(default_factory=list)
    more_changes: int = 0

    def tally(self, decision: Decision) -> None:
        """Count a decision that was (or, dry, would be) written."""
        if decision.row is not None and decision.history:
            self.changed += 1
        for event in decision.events:
            self._event(event.value)

    def _event(self, name: str) -> None:
        self.events[name] = self.events.get(name, 0) + 1
        if name == EventType.DEPROVISIONED.value:
            self.deprovisioned += 1

    def note(
        self,
        extension_id: str,
        decision: Decision,
        *,
        deprovisioning: bool = False,
        remark: str | None = None,
    ) -> None:
        """Keep a readable line for a change (every deprovisioning, other changes when dry);
        `remark` says why, when the fields alone do not (an absence confirmed by a read)."""
        if decision.row is None or not decision.history:
            return
        row = decision.row
        name = " ".join(part for part in (row.first_name, row.last_name) if part)
        fields = sorted(decision.diffs) + ([remark] if remark else [])
        self._keep(
            Change(
                extension_id=extension_id,
                name=name,
                before=decision.old_state.value if decision.old_state else None,
                after=decision.new_state.value if decision.new_state else None,
                events=[event.value for event in decision.events],
                fields=fields,
            )
        )

    def _keep(self, change: Change) -> None:
        if len(self.changes) < CHANGE_LIMIT:
            self.changes.append(change)
        else:
            self.more_changes += 1

    def dry_deprovisions(self) -> None:
        """A dry run the safeguard would let through: count its deprovisionings as events."""
        for _ in range(self.planned_deprovisions):
            self._event(EventType.DEPROVISIONED.value)
            self.changed += 1

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["ratio"] = round(self.ratio, 4)
        return values
