"""A sandbox user (an extension) and the shapes RingCentral shows it in.

Field names and nesting follow the spec's GetExtensionListInfoResponse, GetExtensionInfoResponse
and ScimUserResponse; list records deliberately carry fewer fields than a single read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

STATUSES = ("Enabled", "Disabled", "Frozen", "NotActivated", "Unassigned")
# Control-method keyword -> attribute; anything else is refused so typos fail loudly.
EDITABLE = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "department",
        "job_title",
        "extension_number",
        "international_calling",
        "admin",
        "site",
        "email_as_login_name",
        "status",
        "type",
    }
)

# The account's roles (id -> name); every user starts with the default one, as in RingCentral.
ROLES: Final = {
    "1": "Super Admin",
    "2": "Standard",
    "3": "Phone System Admin",
    "4": "Users Admin",
    "5": "Billing Admin",
}
DEFAULT_ROLE: Final = "2"

_REGIONAL = {
    "homeCountry": {"id": "1", "name": "United States", "isoCode": "US", "callingCode": "1"},
    "timezone": {"id": "58", "name": "US/Pacific", "description": "Pacific Time", "bias": "-480"},
    "language": {"id": "1033", "localeCode": "en-US", "name": "English (United States)"},
    "greetingLanguage": {"id": "1033", "localeCode": "en-US", "name": "English (United States)"},
    "formattingLocale": {"id": "1033", "localeCode": "en-US", "name": "English (United States)"},
    "timeFormat": "12h",
}


@dataclass
class User:
    """The truth about one extension; the API renders it, control methods change it."""

    id: str
    first_name: str
    last_name: str
    email: str
    extension_number: str
    status: str = "Enabled"
    type: str = "User"
    department: str = ""
    job_title: str = ""
    international_calling: bool = False
    email_as_login_name: bool = True
    creation_time: str = ""
    modified: float = 0.0
    status_reason: str | None = field(default=None)
    status_comment: str | None = field(default=None)
    admin: bool = False
    site: dict[str, str] | None = None
    roles: list[str] = field(default_factory=lambda: [DEFAULT_ROLE])

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def truth(self) -> dict[str, Any]:
        """Plain snake_case fields for tests to compare a mirror against."""
        data = asdict(self)
        data["extension_id"] = self.id
        data.pop("modified")
        return data

    def _contact(self) -> dict[str, Any]:
        contact: dict[str, Any] = {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "emailAsLoginName": self.email_as_login_name,
        }
        if self.department:
            contact["department"] = self.department
        if self.job_title:
            contact["jobTitle"] = self.job_title
        return contact

    def list_record(self, base: str, account_id: str) -> dict[str, Any]:
        """One entry of `GET .../extension` (GetExtensionListInfoResponse)."""
        record: dict[str, Any] = {
            "id": int(self.id),
            "uri": f"{base}/restapi/v1.0/account/{account_id}/extension/{self.id}",
            "contact": self._contact(),
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "permissions": {
                "admin": {"enabled": self.admin},
                "internationalCalling": {"enabled": self.international_calling},
            },
            "hidden": False,
            "creationTime": self.creation_time,
        }
        if self.site is not None:
            record["site"] = dict(self.site)
        # The spec: Unassigned extensions are the ones without an extensionNumber.
        if self.status != "Unassigned":
            record["extensionNumber"] = self.extension_number
        return record

    def info(self, base: str, account_id: str) -> dict[str, Any]:
        """`GET .../extension/{id}` (GetExtensionInfoResponse): the list record and more."""
        record = self.list_record(base, account_id)
        record["account"] = {
            "id": account_id,
            "uri": f"{base}/restapi/v1.0/account/{account_id}",
        }
        record["regionalSettings"] = _REGIONAL
        record["setupWizardState"] = "NotStarted" if self.status == "NotActivated" else "Completed"
        if self.status == "Disabled":
            record["statusInfo"] = {"reason": self.status_reason or "Voluntarily"}
            if self.status_comment:
                record["statusInfo"]["comment"] = self.status_comment
        return record

    def assigned_roles(self, base: str, account_id: str) -> list[dict[str, Any]]:
        """The user's roles as `.../assigned-role` shows them (AssignedRoleResource)."""
        return [
            {
                "uri": f"{base}/restapi/v1.0/account/{account_id}/user-role/{role_id}",
                "id": role_id,
                "displayName": ROLES[role_id],
                "autoAssigned": role_id == DEFAULT_ROLE,
                "siteCompatible": True,
                "siteRestricted": False,
            }
            for role_id in self.roles
        ]

    def directory_contact(self, event_type: str, account_id: str) -> dict[str, Any]:
        """An entry of a Company Directory event: full contact data, as the guide shows."""
        contact: dict[str, Any] = {
            "eventType": event_type,
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "name": self.name,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "account": {"id": account_id},
        }
        if self.department:
            contact["department"] = self.department
        if self.status != "Unassigned":
            contact["extensionNumber"] = self.extension_number
        return contact

    def scim(self, base: str, created: str, modified: str) -> dict[str, Any]:
        """A SCIM 2.0 user (ScimUserResponse)."""
        user: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": self.id,
            "userName": self.email,
            "name": {"givenName": self.first_name, "familyName": self.last_name},
            "emails": [{"type": "work", "value": self.email}],
            "active": self.status == "Enabled",
            "meta": {
                "resourceType": "User",
                "created": created,
                "lastModified": modified,
                "location": f"{base}/scim/v2/Users/{self.id}",
            },
        }
        if self.job_title:
            user["title"] = self.job_title
        if self.department:
            user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] = {
                "department": self.department
            }
        return user
