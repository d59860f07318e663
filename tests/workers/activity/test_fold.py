"""Which calls count for whom: outbound for the caller whatever the result, inbound for the
callee only when answered, missed and the rest for nobody; the latest start time wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workers.activity.fold import actor, fold
from workers.ringcentral.resources import CallRecord

T = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def call(direction: str, result: str, *, frm: Any = None, to: Any = None, own: Any = None,
         at: datetime = T) -> CallRecord:  # fmt: skip
    body: dict[str, Any] = {
        "id": "1",
        "startTime": at.isoformat().replace("+00:00", "Z"),
        "direction": direction,
        "result": result,
        "from": {"extensionId": frm} if frm else {"phoneNumber": "+16505550100"},
        "to": {"extensionId": to} if to else {"phoneNumber": "+16505550101"},
    }
    if own is not None:
        body["extension"] = {"id": own, "uri": "https://example.invalid"}
    return CallRecord.model_validate(body)


@pytest.mark.parametrize(
    ("record", "who"),
    [
        (call("Outbound", "Call connected", frm="11"), "11"),
        (call("Outbound", "No Answer", frm="11"), "11"),
        (call("Outbound", "Busy", frm=None, own=11), "11"),
        (call("Inbound", "Accepted", to="12"), "12"),
        (call("Inbound", "Call connected", to="12"), "12"),
        (call("Inbound", "Call connected", to=None, own=12), "12"),
        (call("Inbound", "Missed", to="12"), None),
        (call("Inbound", "Voicemail", to="12"), None),
        (call("Inbound", "Rejected", to="12"), None),
        (call("Inbound", "Answered Elsewhere", to="12"), None),
        (call("Outbound", "Call connected"), None),  # nobody of ours named
    ],
)
def test_who_a_call_counts_for(record: CallRecord, who: str | None) -> None:
    assert actor(record) == who


def test_the_latest_counting_call_wins_and_folding_again_changes_nothing() -> None:
    records = [
        call("Outbound", "Call connected", frm="11", at=T),
        call("Inbound", "Missed", to="11", at=T + timedelta(hours=2)),
        call("Outbound", "No Answer", frm="11", at=T - timedelta(days=1)),
        call("Inbound", "Accepted", to="12", at=T + timedelta(minutes=5)),
    ]
    latest = fold(records)
    assert dict(latest) == {"11": T, "12": T + timedelta(minutes=5)}
    assert dict(fold(reversed(records), latest)) == {"11": T, "12": T + timedelta(minutes=5)}
