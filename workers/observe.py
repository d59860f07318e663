"""Turn what the RingCentral client read into the decision's `Observation` (or `Gone`)."""

from __future__ import annotations

from datetime import datetime

from workers import decide
from workers.ringcentral.resources import AssignedRole, Extension
from workers.ringcentral.resources import Gone as ClientGone

# Mirror field -> (object, attribute) it comes from, for knowing what a partial read carries.
_CONTACT = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "email_as_login": "email_as_login_name",
    "department": "department",
    "job_title": "job_title",
}


def observe(
    found: Extension | ClientGone, *, partial: bool = False
) -> decide.Observation | decide.Gone:
    """`partial` (list pages): only fields present in the record count; missing ones are kept."""
    if isinstance(found, ClientGone):
        return decide.Gone(read_at=found.read_at)
    contact = found.contact
    present: frozenset[str] | None = None
    if partial:
        names = {name for name, attr in _CONTACT.items() if attr in contact.model_fields_set}
        if "extension_number" in found.model_fields_set:
            names.add("extension_number")
        if found.international_calling is not None:
            names.add("international_calling")
        if found.admin is not None:
            names.add("admin")
        if "site" in found.model_fields_set:
            names.add("site")
        present = frozenset(names)
    return decide.Observation(
        read_at=found.read_at,
        status=found.status or "",
        type=found.type or "",
        extension_number=found.extension_number,
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        email_as_login=contact.email_as_login_name,
        department=contact.department,
        job_title=contact.job_title,
        international_calling=found.international_calling,
        admin=found.admin,
        site=None if found.site is None else {"id": found.site.id, "name": found.site.name or ""},
        raw=found.model_dump(mode="json", by_alias=True, exclude={"read_at"}, exclude_none=True),
        present=present,
    )


def observe_roles(roles: list[AssignedRole], read_at: datetime) -> decide.Roles:
    """The decision's view of one extension's roles, as `{id, name}` pairs."""
    return decide.Roles(
        read_at=read_at,
        roles=tuple({"id": role.id, "name": role.display_name or ""} for role in roles),
    )
