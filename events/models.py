"""Notification models: what RingCentral posts to the webhook, validated once on the raw bytes.

RingCentral's shapes vary between its spec and its guide, so these models accept both: the
Extension List body as ``{extensions: [...]}`` (guide) or flat ``{extensionId, eventType}`` (spec);
ids as strings or numbers (always kept as ``str``); timestamps ending in ``Z`` or ``+0000``.
Event filters are matched by pattern, since real ones carry the numeric account id, not ``~``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SkipValidation,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel


def _as_str(value: object) -> object:
    # bool is an int subclass; a boolean id is malformed, not "True".
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Id = Annotated[
    str, BeforeValidator(_as_str), StringConstraints(min_length=1, max_length=128, strict=True)
]

_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def _parse_time(value: object) -> object:
    # Python < 3.12 rejects a "+0000" offset without a colon; RingCentral sends both forms.
    if isinstance(value, str):
        value = value.strip()
        if value[-5:-4] in ("+", "-"):  # what `_OFFSET` needs (a "Z" skips the regex)
            return _OFFSET.sub(r"\1:\2", value)
    return value


Timestamp = Annotated[datetime, BeforeValidator(_parse_time)]


class Kind(StrEnum):
    """What an event filter is about; decides how the body is read and what the worker does."""

    EXTENSION_LIST = "extension_list"
    EXTENSION_INFO = "extension_info"
    DIRECTORY = "directory"
    SUBSCRIPTION = "subscription"
    UNKNOWN = "unknown"


_ACCOUNT = r"/restapi/v1\.0/account/(?:~|\d+)"
_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    (Kind.EXTENSION_LIST, re.compile(rf"^{_ACCOUNT}/extension/?(?:\?.*)?$")),
    (Kind.EXTENSION_INFO, re.compile(rf"^{_ACCOUNT}/extension/(?:~|\d+)/?(?:\?.*)?$")),
    (Kind.DIRECTORY, re.compile(rf"^{_ACCOUNT}/directory/entries/?(?:\?.*)?$")),
    (Kind.SUBSCRIPTION, re.compile(r"^/restapi/v1\.0/subscription/[^/?]+/?(?:\?.*)?$")),
)


def kind_of(event: str) -> Kind:
    """Classify an event filter by pattern (real filters carry numeric ids, not only `~`)."""
    for kind, pattern in _PATTERNS:
        if pattern.match(event):
            return kind
    return Kind.UNKNOWN


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class ExtensionChange(_Model):
    """One extension that changed: RingCentral says *that* it changed, never its new state."""

    extension_id: Id
    event_type: str = "Update"
    hints: list[str] = Field(default_factory=list)


class ExtensionListBody(_Model):
    """Both shapes: the guide's ``extensions[]`` array and the spec's flat body."""

    extensions: list[ExtensionChange]

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "extensions" not in data and "extensionId" in data:
            return {"extensions": [data]}
        return data


class DirectoryContact(_Model):
    """A Company Directory entry, reduced to who it names.

    RingCentral sends contact data here (status, type, names, ...), but nothing in a notification
    body is taken as a user's state: the worker re-reads every extension named, so the rest of
    the entry is ignored on purpose.
    """

    id: Id
    event_type: str = "Update"


class DirectoryBody(_Model):
    contacts: list[DirectoryContact]


class Notification(_Model):
    """The envelope ``{uuid, event, timestamp, subscriptionId, ownerId, body}``."""

    uuid: Id
    event: Annotated[str, StringConstraints(min_length=1, max_length=2048, strict=True)]
    timestamp: Timestamp
    subscription_id: Id | None = None
    owner_id: Id | None = None
    # Validated by `_typed_body` alone, which reads the body as the event says (an unknown
    # event's body stays a plain dict even when it looks like an extension body) and returns
    # nothing else; a union checked again after it cost a sixth of the receiver's validation.
    body: Annotated[dict[str, Any] | ExtensionListBody | DirectoryBody, SkipValidation] = Field(
        default_factory=dict
    )

    @field_validator("body", mode="before")
    @classmethod
    def _typed_body(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            raise ValueError("body must be a JSON object")
        # Their validators straight (model_validate is the same call behind a Python wrapper).
        kind = kind_of(info.data.get("event", ""))
        if kind in (Kind.EXTENSION_LIST, Kind.EXTENSION_INFO):
            return ExtensionListBody.__pydantic_validator__.validate_python(value)
        if kind is Kind.DIRECTORY:
            return DirectoryBody.__pydantic_validator__.validate_python(value)
        return value

    @property
    def kind(self) -> Kind:
        return kind_of(self.event)

    def extension_ids(self) -> list[str]:
        """The extensions this notification says changed, in order, without repeats."""
        if isinstance(self.body, ExtensionListBody):
            ids = [change.extension_id for change in self.body.extensions]
        elif isinstance(self.body, DirectoryBody):
            ids = [contact.id for contact in self.body.contacts]
        else:
            ids = []
        return list(dict.fromkeys(ids))

    def hinted(self, hint: str) -> list[str]:
        """The extensions whose change carries `hint` (`Permissions`: roles may have moved)."""
        if not isinstance(self.body, ExtensionListBody):
            return []
        found = (c.extension_id for c in self.body.extensions if hint in c.hints)
        return list(dict.fromkeys(found))
