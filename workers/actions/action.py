"""An action as the code, events, `--json` and `/v1` see it, and the user snapshot it keeps."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from workers.actions.decide import ActionState, Kind, Subject
from workers.decide import TRACKED_FIELDS, UserRow


@dataclass(frozen=True)
class Action:
    id: str
    account_id: str
    extension_id: str
    kind: Kind
    state: ActionState
    reason: str
    proposed_by: str
    approved_by: str | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    snapshot: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The action as events, `--json` and `/v1` show it."""
        out = asdict(self)
        out.update(kind=str(self.kind), state=str(self.state))
        for name in ("created_at", "decided_at", "started_at", "finished_at"):
            value = out[name]
            out[name] = value.isoformat() if value is not None else None
        return out


def from_row(m: Any) -> Action:
    """An `actions` row as an Action."""
    values = dict(m)
    values.update(kind=Kind(values["kind"]), state=ActionState(values["state"]))
    values["snapshot"] = dict(values["snapshot"] or {})
    return Action(**values)


def snapshot_of(row: UserRow) -> dict[str, Any]:
    """The user as mirrored, as an action keeps it (JSON-ready)."""
    kept = {name: getattr(row, name) for name in TRACKED_FIELDS}
    kept["site"] = dict(row.site) if row.site is not None else None
    kept["state"] = str(row.state)
    return kept


def subject_of(extension_id: str, row: UserRow) -> Subject:
    return Subject.from_snapshot(extension_id, snapshot_of(row))
