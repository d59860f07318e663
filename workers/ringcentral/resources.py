"""RingCentral resources as we read them: only the fields ringsync uses, everything else tolerated.

Field names follow the OpenAPI spec's camelCase through aliases; ids arrive as numbers or
strings and are always kept as `str`. `read_at` is set by the client, never by RingCentral nor
by a body: it is when the request that produced the value was sent, on the clock every process
shares (Redis's, see `workers.ringcentral.budget`), and it guards stale writes in the store. It has
no default: a value whose read time is unknown cannot be made.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel


def _to_str(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_to_str)]


# The validation context key under which `workers.ringcentral.session.parse` passes the send time.
READ_AT: Final = "read_at"


class Resource(BaseModel):
    """Base: camelCase aliases, snake_case names also accepted, unknown fields kept and ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class Read(Resource):
    """A resource as read by one request: `read_at` comes from the validation context (the
    request's send time), for the model and every record nested in it, whatever the body says."""

    read_at: datetime = Field(alias=READ_AT)  # not `readAt`: no body field can stand in for it

    @model_validator(mode="before")
    @classmethod
    def _stamp(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and READ_AT in info.context:
            return {**data, READ_AT: info.context[READ_AT]}
        return data


class Permission(Resource):
    enabled: bool | None = None


class Permissions(Resource):
    admin: Permission | None = None
    international_calling: Permission | None = None


class Site(Resource):
    id: Id
    name: str | None = None


class Contact(Resource):
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_as_login_name: bool | None = None
    department: str | None = None
    job_title: str | None = None
    company: str | None = None


class StatusInfo(Resource):
    comment: str | None = None
    reason: str | None = None


class RegionalSettings(Resource):
    """Kept loosely typed beyond its presence: ringsync only carries it through."""

    home_country: dict[str, Any] | None = None
    timezone: dict[str, Any] | None = None
    language: dict[str, Any] | None = None


class Extension(Read):
    """A user (or other extension type) from a single read or from a list page.

    List records lack `statusInfo`, `regionalSettings` and more: None means "not in this read",
    never "empty".
    """

    id: Id
    extension_number: str | None = None
    type: str | None = None
    status: str | None = None
    name: str | None = None
    contact: Contact = Field(default_factory=Contact)
    permissions: Permissions | None = None
    site: Site | None = None
    status_info: StatusInfo | None = None
    regional_settings: RegionalSettings | None = None

    @property
    def international_calling(self) -> bool | None:
        """Whether international calling is enabled, or None when the read did not say."""
        if self.permissions is None or self.permissions.international_calling is None:
            return None
        return self.permissions.international_calling.enabled

    @property
    def admin(self) -> bool | None:
        """Whether the extension has the admin permission, or None when the read did not say."""
        if self.permissions is None or self.permissions.admin is None:
            return None
        return self.permissions.admin.enabled


class PageUri(Resource):
    uri: str


class Navigation(Resource):
    first_page: PageUri | None = None
    next_page: PageUri | None = None
    previous_page: PageUri | None = None
    last_page: PageUri | None = None


class Paging(Resource):
    """RingCentral's enumerated paging; totals may be absent."""

    per_page: int | None = None
    page: int | None = None
    page_start: int | None = None
    page_end: int | None = None
    total_pages: int | None = None
    total_elements: int | None = None


class Page(Read):
    """A page of a paged listing; subclasses say what its records are."""

    records: Sequence[Any]
    navigation: Navigation = Field(default_factory=Navigation)
    paging: Paging = Field(default_factory=Paging)


class ExtensionPage(Page):
    records: list[Extension]


class AssignedRole(Resource):
    id: Id
    display_name: str | None = None


class AssignedRoles(Read):
    """One extension's roles (`GET .../extension/{id}/assigned-role`)."""

    records: list[AssignedRole] = Field(default_factory=list)


class ExtensionRoles(Resource):
    extension_id: Id
    roles: list[AssignedRole] = Field(default_factory=list)


class AssignedRolePage(Page):
    """A page of the account's role assignments: only extensions holding a role are listed."""

    records: list[ExtensionRoles]


class Operator(Resource):
    id: Id | None = None
    extension_number: str | None = None


class Account(Resource):
    id: Id
    status: str | None = None
    main_number: str | None = None
    # The account's main (operator) extension: never suspended nor deleted by an action.
    operator: Operator | None = None


class DeliveryMode(Resource):
    transport_type: str | None = None
    address: str | None = None
    encryption: bool | None = None
    # RingCentral does not echo it, but should anything ever do so it stays masked.
    verification_token: SecretStr | None = None


class Subscription(Resource):
    id: Id
    status: str
    event_filters: list[str] = Field(default_factory=list)
    expiration_time: datetime | None = None
    expires_in: int | None = None
    creation_time: datetime | None = None
    delivery_mode: DeliveryMode = Field(default_factory=DeliveryMode)
    blacklisted_data: dict[str, Any] | None = None


class SubscriptionList(Resource):
    records: list[Subscription]


class ScimName(Resource):
    given_name: str | None = None
    family_name: str | None = None


class ScimEmail(Resource):
    value: str
    type: str | None = None


class ScimEnterprise(Resource):
    department: str | None = None


class ScimUser(Read):
    id: Id
    user_name: str | None = None
    active: bool | None = None
    name: ScimName | None = None
    emails: list[ScimEmail] = Field(default_factory=list)
    title: str | None = None
    enterprise: ScimEnterprise | None = Field(
        None, alias="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    )


class ScimUserPage(Read):
    resources: list[ScimUser] = Field(
        default_factory=list, validation_alias=AliasChoices("Resources", "resources")
    )
    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None


class Gone(BaseModel):
    """An explicit "this no longer exists" (404, `CMN-102` for extensions) read at `read_at`."""

    id: str
    read_at: datetime
    error_code: str | None = None


class ApiErrorItem(Resource):
    error_code: str | None = None
    message: str | None = None


class ErrorBody(Resource):
    """Any of RingCentral's error shapes: `{errors: [...]}`, a flat one, OAuth's, or SCIM's."""

    errors: list[ApiErrorItem] = Field(default_factory=list)
    error_code: str | None = None
    message: str | None = None
    error: str | None = Field(None, alias="error")
    error_description: str | None = Field(None, alias="error_description")
    scim_type: str | None = None
    detail: str | None = None

    @property
    def code(self) -> str | None:
        """The first machine-readable code found, RingCentral's `errorCode` first."""
        for item in self.errors:
            if item.error_code:
                return item.error_code
        return self.error_code or self.scim_type or self.error

    @property
    def text(self) -> str:
        for item in self.errors:
            if item.message:
                return item.message
        return self.message or self.detail or self.error_description or ""


class BulkDeleteItem(Resource):
    """One extension's outcome in a bulk delete (`bulkItemErrors` only when it failed)."""

    id: Id
    bulk_item_successful: bool
    bulk_item_errors: list[ApiErrorItem] = Field(default_factory=list)

    @property
    def error_code(self) -> str | None:
        return next((e.error_code for e in self.bulk_item_errors if e.error_code), None)


class BulkDeleteResult(Read):
    records: list[BulkDeleteItem]


class IssuedToken(BaseModel):
    """The OAuth token endpoint's answer, reduced to what we keep (`access_token` stays secret)."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    access_token: SecretStr
    expires_in: int
