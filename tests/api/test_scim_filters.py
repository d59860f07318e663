"""Every filter operator on every filterable attribute, against a seeded mirror on SQLite and
PostgreSQL, compared with the answer scim2-models' own evaluator gives on the seed in Python."""

from __future__ import annotations

from typing import Any

import httpx
from scim2_models import ScimFilter, User

from tests.api.conftest import Served
from tests.api.mirror import SCIM_TOKEN

STRINGS = {
    "userName": ["ada.0@example.com", "EVE", "a", "shared", ".COM", "1042"],
    # Whole addresses: scim2-models reads a value compared with an email as an email.
    "emails.value": ["ADA.0@EXAMPLE.COM", "bob.1@example.com", "m@m.org", "shared.5@example.org"],
    "name.givenName": ["ada", "CHARLIE", "g", "Z", "h"],
    "name.familyName": ["smith", "O'N", "x_y%z", "%", "l", "_"],
    "externalId": ["1000", "10", "1", "2", "1203"],
}
MOMENTS = ["2026-01-05T09:30:00Z", "2026-01-05T10:10:00+01:00", "2026-01-05T09:00:00Z"]
FILTERS = [
    *(
        f'{attribute} {op} "{value}"'
        for attribute, values in STRINGS.items()
        for value in values
        for op in ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
    ),
    *(f"{attribute} pr" for attribute in [*STRINGS, "active", "meta.lastModified"]),
    "active eq true",
    "active eq false",
    "active ne true",
    *(
        f'meta.lastModified {op} "{moment}"'
        for moment in MOMENTS
        for op in ("eq", "ne", "gt", "ge", "lt", "le")
    ),
    'userName co "example" and active eq true',
    'name.givenName eq "ada" or name.familyName eq "SMITH"',
    'not (active eq true) and (emails.value sw "e" or name.familyName pr)',
    "not (name.familyName pr)",
    'emails[value co "ORG"]',
    'emails.value co "example"',
    'emails.value sw "B"',
    'emails.value ew ".ORG"',
    'USERNAME Sw "A" and urn:ietf:params:scim:schemas:core:2.0:User:active eq false',
    'meta.lastModified gt "2026-01-05T09:20:00Z" and '
    'not (meta.lastModified ge "2026-01-05T09:40:00Z")',
]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {SCIM_TOKEN}"}


async def test_each_filter_selects_what_the_seed_says(served: Served) -> None:
    expected = [person.expected() for person in served.people]
    wrong: list[tuple[str, list[str], list[str]]] = []
    sizes: set[int] = set()
    async with httpx.AsyncClient(base_url=served.url, headers=auth()) as http:
        for text in FILTERS:
            truth = sorted(u.id or "" for u in expected if ScimFilter[User[Any]](text).match(u))
            sizes.add(len(truth))
            reply = await http.get("/scim/v2/Users", params={"filter": text, "count": 1000})
            assert reply.status_code == 200, (text, reply.text)
            body = reply.json()
            got = sorted(resource["id"] for resource in body["Resources"])
            if got != truth or body["totalResults"] != len(truth):
                wrong.append((text, got, truth))
    assert wrong == []
    # The seed tells filters apart: they select none, some, and all of its users.
    assert {0, len(expected)} < sizes
    assert len(sizes) > 20


INVALID = [
    "userName eq",
    'nickName eq "x"',
    "active gt true",
    'active eq "yes"',
    'meta.lastModified co "2026"',
    'meta.lastModified gt "yesterday"',
    'meta.lastModified gt "2026-01-05T09:00:00"',
    "userName eq 5",
    'urn:example:other:1.0:User:userName eq "x"',
    'phoneNumbers[value eq "1"]',
    '(userName eq "x"',
]


async def test_an_invalid_filter_is_a_400_invalid_filter(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url, headers=auth()) as http:
        replies = [await http.get("/scim/v2/Users", params={"filter": t}) for t in INVALID]
    for reply in replies:
        assert reply.status_code == 400
        assert reply.headers["content-type"].startswith("application/scim+json")
        body = reply.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert (body["status"], body["scimType"]) == ("400", "invalidFilter")
