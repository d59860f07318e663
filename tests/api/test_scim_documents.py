"""The SCIM User written straight from a row is exactly what scim2-models makes of the same row,
and an email a strict validator rejects is served, not a failed page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models import Context, ListResponse

from api.scim.documents import user_document
from api.scim.schemas import ScimUser
from api.scim.users import user_resource

_text = st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=12))
_email = st.one_of(st.none(), st.just(""), st.emails(), st.just("ops@localhost"))
_role = st.fixed_dictionaries({"id": st.integers(1, 99).map(str), "name": st.text(max_size=8)})
_moment = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
)
rows = st.fixed_dictionaries(
    {
        "extension_id": st.integers(1, 10**12).map(str),
        "email": _email,
        "first_name": _text,
        "last_name": _text,
        "job_title": _text,
        "department": _text,
        "extension_number": _text,
        "status": st.sampled_from([None, "Enabled", "Disabled", "NotActivated"]),
        "state": st.sampled_from(["active", "pending", "suspended", "deprovisioned"]),
        "roles": st.one_of(st.none(), st.lists(_role, max_size=3)),
        "first_seen_at": _moment,
        "updated_at": _moment,
        "sequence": st.integers(0, 10**6),
        "last_activity_at": st.one_of(st.none(), _moment),
    }
)


def _models(row: dict[str, Any], location: str) -> dict[str, Any]:
    dumped: dict[str, Any] = user_resource(row, location).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    return dumped


@settings(max_examples=300, deadline=None)
@given(row=rows)
def test_a_row_serves_as_scim2_models_would(row: dict[str, Any]) -> None:
    location = f"https://mirror.example/scim/v2/Users/{row['extension_id']}"
    assert user_document(row, location) == _models(row, location)


@settings(max_examples=50, deadline=None)
@given(page=st.lists(rows, max_size=5))
def test_a_page_serves_as_scim2_models_would(page: list[dict[str, Any]]) -> None:
    resources = [user_resource(row, f"/Users/{row['extension_id']}") for row in page]
    answer = ListResponse[ScimUser](
        total_results=len(page), start_index=1, items_per_page=len(page), resources=resources
    )
    expected = answer.model_dump(scim_ctx=Context.SEARCH_RESPONSE)
    served = [user_document(row, f"/Users/{row['extension_id']}") for row in page]
    assert expected.get("Resources", []) == served


def test_microseconds_and_whole_seconds_are_written_as_pydantic_writes_them() -> None:
    base = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    for moment in (base, base + timedelta(microseconds=120), base + timedelta(microseconds=5)):
        row: dict[str, Any] = {
            "extension_id": "7", "email": "Mixed.Case@Example.COM", "first_name": "A",
            "last_name": "B", "job_title": None, "department": None, "extension_number": None,
            "status": None, "state": "active", "roles": None, "first_seen_at": moment,
            "updated_at": moment, "sequence": 1, "last_activity_at": moment,
        }  # fmt: skip
        assert user_document(row, "/Users/7") == _models(row, "/Users/7")
        # As RingCentral has it: no validator rewrites the domain.
        assert user_document(row, "/Users/7")["emails"][0]["value"] == "Mixed.Case@Example.COM"
