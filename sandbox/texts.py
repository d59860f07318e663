"""The text messages each extension sent and received: what `sandbox.message_store` lists."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

DIRECTIONS = ("Inbound", "Outbound")


@dataclass(frozen=True, slots=True)
class Text:
    created: float
    id: str
    extension_id: str
    direction: str
    peer: str


class Texts:
    """Every extension's SMS, each extension's sorted by creation time."""

    def __init__(self) -> None:
        self._by_extension: dict[str, list[Text]] = {}
        self._ids = itertools.count(1)

    def add(self, extension_id: str, direction: str, created: float, peer: str) -> Text:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        text = Text(created, f"{next(self._ids)}", str(extension_id), direction, peer)
        own = self._by_extension.setdefault(text.extension_id, [])
        own.insert(bisect.bisect_right([t.created for t in own], created), text)
        return text

    def between(
        self, extension_id: str, since: float, until: float, direction: str | None
    ) -> list[Text]:
        """The extension's texts with since <= created <= until, newest first."""
        own = self._by_extension.get(extension_id, [])
        found = [t for t in own if since <= t.created <= until]
        return [t for t in reversed(found) if direction in (None, t.direction)]
