"""Notification parsing: both Extension List shapes, ids as numbers, both timestamp forms."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from events.models import DirectoryBody, ExtensionListBody, Kind, Notification, kind_of


def parse(doc: dict[str, Any]) -> Notification:
    return Notification.model_validate_json(orjson.dumps(doc))


def envelope(event: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"uuid": "u-1", "event": event, "timestamp": "2026-01-02T03:04:05.678Z", "body": body,
            **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("/restapi/v1.0/account/~/extension", Kind.EXTENSION_LIST),
        ("/restapi/v1.0/account/400386146004/extension", Kind.EXTENSION_LIST),
        ("/restapi/v1.0/account/~/extension?type=User", Kind.EXTENSION_LIST),
        ("/restapi/v1.0/account/~/extension/8475874957", Kind.EXTENSION_INFO),
        ("/restapi/v1.0/account/12/extension/~", Kind.EXTENSION_INFO),
        ("/restapi/v1.0/account/12/directory/entries", Kind.DIRECTORY),
        ("/restapi/v1.0/subscription/~?threshold=86400&interval=3600", Kind.SUBSCRIPTION),
        ("/restapi/v1.0/account/~/extension/8475874957/grant", Kind.UNKNOWN),
        ("/restapi/v1.0/account/~/extension/1/presence", Kind.UNKNOWN),
        ("/restapi/v1.0/account/abc/extension", Kind.UNKNOWN),
        ("", Kind.UNKNOWN),
    ],
)
def test_event_filters_are_matched_by_pattern(event: str, kind: Kind) -> None:
    assert kind_of(event) is kind


def test_guide_shape_with_an_extensions_array() -> None:
    n = parse(
        envelope(
            "/restapi/v1.0/account/~/extension",
            {"extensions": [
                {"extensionId": "74953947939", "eventType": "Delete"},
                {"extensionId": 8798797945, "eventType": "Create"},
                {"extensionId": "74953947939", "eventType": "Update", "hints": ["ExtensionInfo"]},
            ]},
            timestamp="2014-04-29T14:29:27.408+0000",
            ownerId=1500723004,
        )
    )  # fmt: skip
    assert isinstance(n.body, ExtensionListBody)
    assert n.extension_ids() == ["74953947939", "8798797945"]
    assert n.owner_id == "1500723004"
    assert n.timestamp == datetime(2014, 4, 29, 14, 29, 27, 408000, tzinfo=UTC)


def test_spec_shape_with_a_flat_body() -> None:
    n = parse(
        envelope(
            "/restapi/v1.0/account/400386146004/extension",
            {"extensionId": 42, "eventType": "Create", "ownerId": "7"},
        )
    )
    assert n.kind is Kind.EXTENSION_LIST
    assert n.extension_ids() == ["42"]


def test_extension_info_event() -> None:
    n = parse(
        envelope(
            "/restapi/v1.0/account/~/extension/8475874957",
            {"extensionId": "8475874957", "eventType": "Update", "hints": ["ExtensionInfo"]},
            subscriptionId=123,
        )
    )
    assert n.kind is Kind.EXTENSION_INFO
    assert n.extension_ids() == ["8475874957"]
    assert n.subscription_id == "123"


def test_company_directory_event_names_users_and_keeps_none_of_their_data() -> None:
    n = parse(
        envelope(
            "/restapi/v1.0/account/400386146004/directory/entries",
            {"contacts": [{
                "eventType": "Update", "id": 8798797945, "type": "User", "status": "Enabled",
                "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
                "extensionNumber": "103", "department": "Sales", "site": {"id": "1"},
            }]},
        )
    )  # fmt: skip
    assert isinstance(n.body, DirectoryBody)
    contact = n.body.contacts[0]
    assert (contact.id, contact.event_type) == ("8798797945", "Update")
    # A body says which users to re-read, never what they are: status and the rest are dropped.
    assert contact.model_dump() == {"id": "8798797945", "event_type": "Update"}
    assert n.extension_ids() == ["8798797945"]


def test_unknown_events_keep_their_body_and_expand_to_nothing() -> None:
    n = parse(envelope("/restapi/v1.0/account/~/extension/1/grant", {"extensionId": "1"}))
    assert n.kind is Kind.UNKNOWN
    assert n.body == {"extensionId": "1"}
    assert n.extension_ids() == []


@pytest.mark.parametrize(
    "doc",
    [
        {"event": "/x", "timestamp": "2026-01-01T00:00:00Z"},  # no uuid
        envelope("/restapi/v1.0/account/~/extension", {"extensions": [{}]}),
        envelope("/restapi/v1.0/account/~/extension", {"extensions": "nope"}),
        envelope("/restapi/v1.0/account/~/directory/entries", {"contacts": [{"id": None}]}),
        {**envelope("/x", {}), "uuid": ""},
        {**envelope("/x", {}), "timestamp": "not a time"},
    ],
)
def test_malformed_envelopes_are_refused(doc: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(doc)


@pytest.mark.parametrize(
    ("doc", "where", "message"),
    [
        (envelope("/x", [1]), ("body",), "body must be a JSON object"),  # type: ignore[arg-type]
        (envelope("/restapi/v1.0/account/~/extension", {"extensions": [{}]}),
         ("body", "extensions", 0, "extensionId"), "Field required"),
        (envelope("/restapi/v1.0/account/~/extension", {"extensionId": True}),
         ("body", "extensions", 0, "extensionId"), "Input should be a valid string"),
        (envelope("/restapi/v1.0/account/~/directory/entries", {"contacts": [{"id": None}]}),
         ("body", "contacts", 0, "id"), "Input should be a valid string"),
        ({**envelope("/x", {}), "timestamp": "2026-11-23T10:00:00+00"}, ("timestamp",),
         "unexpected extra characters"),
    ],
)  # fmt: skip
def test_a_malformed_body_says_where(
    doc: dict[str, Any], where: tuple[Any, ...], message: str
) -> None:
    """The receiver's 400 reason is the first error's place and message: both stay put."""
    with pytest.raises(ValidationError) as caught:
        parse(doc)
    first = caught.value.errors()[0]
    assert first["loc"] == where
    assert message in first["msg"]


def test_an_unknown_event_s_body_is_kept_as_sent_even_when_it_looks_typed() -> None:
    body = {"extensions": [{"extensionId": 7}], "other": [1, {"a": None}]}
    n = parse(envelope("/restapi/v1.0/account/~/extension/1/grant", body))
    assert n.body == body
    assert n.extension_ids() == []


@pytest.mark.parametrize(
    "timestamp",
    ["2026-11-23T10:00:00Z", "2026-11-23T10:00:00+0000", " 2026-11-23T05:00:00-0500 ",
     "2026-11-23T11:30:00+01:30"],
)  # fmt: skip
def test_offsets_with_and_without_a_colon_name_the_same_instant(timestamp: str) -> None:
    n = parse({**envelope("/x", {}), "timestamp": timestamp})
    assert n.timestamp == datetime(2026, 11, 23, 10, tzinfo=UTC)
