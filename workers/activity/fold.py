"""Which call counts as activity for whom, and the latest one per extension: pure.

"Active" is the SaaS-management definition: the user made or answered a call. An outbound call
counts for its caller whatever its result (they acted, even if nobody picked up); an inbound one
counts for its callee only when it was answered (`Accepted` or `Call connected`). Missed calls,
voicemail, rejected and the rest count for nobody: being called is not using a licence.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from datetime import datetime
from typing import Final

from workers.ringcentral.resources import CallRecord

ANSWERED: Final = frozenset({"Accepted", "Call connected"})


def actor(record: CallRecord) -> str | None:
    """The extension this call counts for, or None when it counts for nobody."""
    own = record.extension.id if record.extension is not None else None
    if record.direction == "Outbound":
        party = record.from_
    elif record.direction == "Inbound" and record.result in ANSWERED:
        party = record.to
    else:
        return None
    if party is not None and party.extension_id:
        return party.extension_id
    return own


def fold(
    records: Iterable[CallRecord], into: MutableMapping[str, datetime] | None = None
) -> MutableMapping[str, datetime]:
    """`into` (or a new mapping) with each extension's latest counting `startTime` among
    `records` and what it held already: folding the same records twice changes nothing."""
    latest: MutableMapping[str, datetime] = {} if into is None else into
    for record in records:
        extension = actor(record)
        if extension is None:
            continue
        known = latest.get(extension)
        if known is None or record.start_time > known:
            latest[extension] = record.start_time
    return latest
