"""What the service provider serves, as scim2-models types and the discovery documents that
describe exactly that (RFC 7643 §5–7): the core User restricted to the attributes the mirror
holds, the enterprise extension (department), ringsync's own extension, and Group (one per role).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Extension,
    Filter,
    Group,
    Mutability,
    Patch,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

CORE_USER: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
RINGSYNC_USER: Final = "urn:ietf:params:scim:schemas:extension:ringsync:2.0:User"
# The most resources one list answer holds (`filter.maxResults`); larger `count`s are cut to it.
MAX_RESULTS: Final = 1000


class RingsyncUser(Extension):
    """What RingCentral says of the user beyond the core schema."""

    __schema__ = URN(RINGSYNC_USER)

    extension_number: Annotated[str | None, Mutability.read_only] = None
    """The extension's short number."""

    status: Annotated[str | None, Mutability.read_only] = None
    """RingCentral's status word (Enabled, Disabled, Frozen, NotActivated, Unassigned)."""

    state: Annotated[str | None, Mutability.read_only] = None
    """ringsync's lifecycle state: active, pending, suspended or deprovisioned."""

    last_activity: Annotated[datetime | None, Mutability.read_only] = None
    """When the user last made or answered a call (the call log's startTime), if ever seen."""


ScimUser = User[EnterpriseUser | RingsyncUser]

# The core User attributes the mirror fills in; the User schema lists these and no others.
_USER_ATTRIBUTES: Final = {
    "userName": None,
    "name": {"formatted", "familyName", "givenName"},
    "displayName": None,
    "title": None,
    "active": None,
    "emails": {"value", "type", "primary"},
    "groups": {"value", "$ref", "display", "type"},
}


def _read_only(schema: Schema, keep: dict[str, set[str] | None] | None = None) -> Schema:
    """`schema` with only the attributes in `keep` (all when None), every one read-only."""
    attributes = []
    for attribute in schema.attributes or []:
        if keep is not None and attribute.name not in keep:
            continue
        subs = keep.get(attribute.name or "") if keep is not None else None
        sub_attributes = [
            sub.model_copy(update={"mutability": Mutability.read_only})
            for sub in attribute.sub_attributes or []
            if subs is None or sub.name in subs
        ]
        attributes.append(
            attribute.model_copy(
                update={
                    "mutability": Mutability.read_only,
                    "sub_attributes": sub_attributes or None,
                }
            )
        )
    return schema.model_copy(update={"attributes": attributes})


def schemas() -> list[Schema]:
    """The Schemas documents, each with its `meta.location` left to the route."""
    return [
        _read_only(User.to_schema(), _USER_ATTRIBUTES),
        _read_only(EnterpriseUser.to_schema(), {"department": None}),
        _read_only(RingsyncUser.to_schema()).model_copy(
            update={"name": "RingsyncUser", "description": "RingCentral extension facts"}
        ),
        _read_only(Group.to_schema()),
    ]


def resource_types() -> list[ResourceType]:
    return [ResourceType.from_resource(ScimUser), ResourceType.from_resource(Group)]


def service_provider_config(documentation: str | None = None) -> ServiceProviderConfig:
    """Read-only: filter and ETags supported; patch, bulk, changePassword and sort not."""
    return ServiceProviderConfig(
        documentation_uri=documentation,
        patch=Patch(supported=False),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="Authorization: Bearer RINGSYNC_SCIM_TOKEN",
                primary=True,
            )
        ],
    )


def dump(document: Any, context: Context = Context.RESOURCE_QUERY_RESPONSE) -> dict[str, Any]:
    """A scim2-models object as the JSON a response carries."""
    dumped: dict[str, Any] = document.model_dump(scim_ctx=context)
    return dumped
