"""What RingCentral's API reference lets the sandbox answer, kept as our own facts.

For each path, method and status the sandbox serves, and each notification it sends: the fields a
body must carry, the JSON type of each field ringsync relies on, and the values an enumerated field
may take, as JSON Schema. We wrote these down from the public reference (nothing of its text is
here); `test_fidelity.py` checks the sandbox against them on every run, and checks them against the
reference itself whenever that is at hand. A field not named here is allowed, as in the reference.
"""

from __future__ import annotations

from typing import Any, Final

Schema = dict[str, Any]

STRING: Final[Schema] = {"type": "string"}
INTEGER: Final[Schema] = {"type": "integer"}
BOOLEAN: Final[Schema] = {"type": "boolean"}
TIME: Final[Schema] = {"type": "string", "format": "date-time"}
URI: Final[Schema] = {"type": "string", "format": "uri"}
EMAIL: Final[Schema] = {"type": "string", "format": "email"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """An object that must carry `required` and may carry `optional`, each of its type."""
    schema: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = sorted(required)
    return schema


def closed(schema: Schema) -> Schema:
    """The same object, with no field beyond those it names (where the reference says so)."""
    return {**schema, "additionalProperties": False}


def one_of(*values: str | bool) -> Schema:
    kind = "boolean" if isinstance(values[0], bool) else "string"
    return {"type": kind, "enum": list(values)}


def array(items: Schema, **limits: int) -> Schema:
    return {"type": "array", "items": items, **limits}


def count(minimum: int | None = None, maximum: int | None = None) -> Schema:
    bounds = {"minimum": minimum, "maximum": maximum}
    return {**INTEGER, **{key: value for key, value in bounds.items() if value is not None}}


# --- errors ---------------------------------------------------------------------------------------
ERRORS = obj({"errors": array(obj({"errorCode": STRING, "message": STRING}), minItems=1)})
OAUTH_ERROR = {
    **ERRORS,
    "properties": {
        **ERRORS["properties"],
        "error": one_of(
            "invalid_request", "invalid_client", "invalid_grant", "unsupported_grant_type"
        ),
    },
}

# --- OAuth ----------------------------------------------------------------------------------------
TOKEN = obj(
    {
        "access_token": STRING,
        "token_type": one_of("bearer"),
        "expires_in": INTEGER,
        "scope": STRING,
        "session_id": STRING,
    },
    {
        "refresh_token": STRING,
        "refresh_token_expires_in": INTEGER,
        "owner_id": STRING,
        "endpoint_id": STRING,
    },
)

# --- account and extensions -----------------------------------------------------------------------
# The account's own id is a number; inside an extension, `account.id` is a string.
ACCOUNT = obj(
    {},
    {
        "id": INTEGER,
        "uri": URI,
        "mainNumber": STRING,
        "status": one_of("Initial", "Unconfirmed", "Confirmed", "Disabled"),
        "setupWizardState": one_of("NotStarted", "Incomplete", "Completed", "Unknown"),
        "operator": obj({}, {"id": INTEGER, "uri": URI}),
    },
)
EXTENSION_STATUS = one_of("Enabled", "Disabled", "Frozen", "NotActivated", "Unassigned")
# The types ringsync and the sandbox deal in (the reference knows a score more).
EXTENSION_TYPE = one_of(
    "User", "Department", "Announcement", "Voicemail", "Room", "Site", "Limited"
)
PERMISSION = obj({}, {"enabled": BOOLEAN})
CONTACT = obj(
    {},
    {
        "firstName": STRING,
        "lastName": STRING,
        "email": EMAIL,
        "emailAsLoginName": BOOLEAN,
        "department": STRING,
        "jobTitle": STRING,
    },
)
# A list record: fewer fields than a single read.
EXTENSION_RECORD = obj(
    {},
    {
        "id": INTEGER,
        "uri": URI,
        "extensionNumber": STRING,
        "name": STRING,
        "type": EXTENSION_TYPE,
        "status": EXTENSION_STATUS,
        "contact": CONTACT,
        "permissions": obj({}, {"admin": PERMISSION, "internationalCalling": PERMISSION}),
        "site": obj({}, {"id": STRING, "name": STRING}),
        "hidden": BOOLEAN,
        "creationTime": TIME,
    },
)
EXTENSION = obj(
    {},
    {
        **EXTENSION_RECORD["properties"],
        "account": obj({}, {"id": STRING, "uri": URI}),
        "setupWizardState": one_of("NotStarted", "Incomplete", "Completed"),
        "statusInfo": obj({}, {"reason": one_of("Voluntarily", "Involuntarily")}),
        "regionalSettings": obj({}, {"timeFormat": one_of("12h", "24h")}),
    },
)
PAGE_LINK = closed(obj({}, {"uri": URI}))
PAGED = {
    "uri": URI,
    "paging": closed(
        obj(
            {"perPage": count(1, 1000)},
            {
                "page": count(1, 1000),
                "pageStart": count(0),
                "pageEnd": count(0),
                "totalPages": count(0),
                "totalElements": count(0),
            },
        )
    ),
    "navigation": closed(
        obj(
            {},
            {page: PAGE_LINK for page in ("firstPage", "nextPage", "previousPage", "lastPage")},
        )
    ),
}
EXTENSION_LIST = obj({"records": array(EXTENSION_RECORD)}, PAGED)

# --- roles ----------------------------------------------------------------------------------------
ASSIGNED_ROLE = obj(
    {"id": STRING, "displayName": STRING},
    {"uri": URI, "autoAssigned": BOOLEAN, "siteCompatible": BOOLEAN, "siteRestricted": BOOLEAN},
)
# An extension's roles: a plain list, never paged.
EXTENSION_ROLES = obj({"records": array(ASSIGNED_ROLE)}, {"uri": URI})
# The account's assignments: one record per extension that holds a role, paged.
ACCOUNT_ROLES = obj(
    {"records": array(obj({"extensionId": STRING, "roles": array(ASSIGNED_ROLE)}, {"uri": URI}))},
    PAGED,
)

# --- subscriptions --------------------------------------------------------------------------------
SUBSCRIPTION = obj(
    {
        "id": STRING,
        "uri": URI,
        "eventFilters": array(STRING),
        "deliveryMode": obj(
            {"transportType": one_of("WebHook"), "address": URI, "encryption": one_of(False)}
        ),
        "creationTime": TIME,
        "expirationTime": TIME,
        "status": one_of("Active", "Blacklisted"),
    },
    {
        "expiresIn": count(1),
        "blacklistedData": obj({}, {"blacklistedAt": TIME, "reason": STRING}),
    },
)
SUBSCRIPTION_LIST = obj({"uri": URI, "records": array(SUBSCRIPTION, maxItems=30)})

# --- SCIM -----------------------------------------------------------------------------------------
SCIM_USER = obj(
    {
        "schemas": array(one_of("urn:ietf:params:scim:schemas:core:2.0:User")),
        "userName": STRING,
        "name": obj({"givenName": STRING, "familyName": STRING}),
        "emails": array(obj({"type": one_of("work"), "value": STRING})),
    },
    {
        "id": STRING,
        "active": BOOLEAN,
        "title": STRING,
        "meta": obj(
            {},
            {
                "resourceType": one_of("User"),
                "created": TIME,
                "lastModified": TIME,
                "location": STRING,
            },
        ),
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": obj(
            {}, {"department": STRING}
        ),
    },
)
SCIM_USERS = obj(
    {},
    {
        "schemas": array(one_of("urn:ietf:params:scim:api:messages:2.0:ListResponse")),
        "totalResults": INTEGER,
        "startIndex": INTEGER,
        "itemsPerPage": INTEGER,
        "Resources": array(SCIM_USER),
    },
)
# A SCIM error's status is a string ("404"), unlike everything else here.
SCIM_ERROR = obj(
    {},
    {
        "schemas": array(one_of("urn:ietf:params:scim:api:messages:2.0:Error")),
        "status": STRING,
        "scimType": one_of("invalidFilter", "invalidValue"),
        "detail": STRING,
    },
)

# --- what the sandbox serves: (method, path, status) → body (None: no body) -----------------------
ACCOUNT_PATH = "/restapi/v1.0/account/{accountId}"
EXTENSIONS = f"{ACCOUNT_PATH}/extension"
ONE_EXTENSION = f"{EXTENSIONS}/{{extensionId}}"
SUBSCRIPTIONS = "/restapi/v1.0/subscription"
ONE_SUBSCRIPTION = f"{SUBSCRIPTIONS}/{{subscriptionId}}"

RESPONSES: Final[dict[tuple[str, str, int], Schema | None]] = {
    ("POST", "/restapi/oauth/token", 200): TOKEN,
    ("POST", "/restapi/oauth/token", 400): OAUTH_ERROR,
    ("POST", "/restapi/oauth/revoke", 200): None,
    ("GET", ACCOUNT_PATH, 200): ACCOUNT,
    ("GET", EXTENSIONS, 200): EXTENSION_LIST,
    ("GET", EXTENSIONS, 401): ERRORS,
    ("GET", ONE_EXTENSION, 200): EXTENSION,
    ("GET", ONE_EXTENSION, 404): ERRORS,
    ("GET", f"{ACCOUNT_PATH}/assigned-role", 200): ACCOUNT_ROLES,
    ("GET", f"{ONE_EXTENSION}/assigned-role", 200): EXTENSION_ROLES,
    ("GET", f"{ONE_EXTENSION}/assigned-role", 404): ERRORS,
    ("GET", "/scim/v2/Users", 200): SCIM_USERS,
    ("GET", "/scim/v2/Users", 400): SCIM_ERROR,
    ("GET", "/scim/v2/Users/{scimUserId}", 200): SCIM_USER,
    ("GET", "/scim/v2/Users/{scimUserId}", 404): SCIM_ERROR,
    ("POST", SUBSCRIPTIONS, 200): SUBSCRIPTION,
    ("POST", SUBSCRIPTIONS, 400): ERRORS,
    ("GET", SUBSCRIPTIONS, 200): SUBSCRIPTION_LIST,
    ("GET", ONE_SUBSCRIPTION, 200): SUBSCRIPTION,
    ("GET", ONE_SUBSCRIPTION, 404): ERRORS,
    ("PUT", ONE_SUBSCRIPTION, 200): SUBSCRIPTION,
    ("POST", f"{ONE_SUBSCRIPTION}/renew", 200): SUBSCRIPTION,
    ("DELETE", ONE_SUBSCRIPTION, 204): None,
}

# --- notifications, by the reference's name for each ----------------------------------------------
_ENVELOPE = {"uuid": STRING, "event": STRING, "timestamp": STRING, "subscriptionId": STRING}
NOTIFICATIONS: Final[dict[str, Schema]] = {
    "ExtensionListEvent": obj(
        {
            **_ENVELOPE,
            "body": obj(
                {"extensionId": STRING, "eventType": one_of("Create", "Update", "Delete")},
                {"ownerId": STRING},
            ),
        }
    ),
    "ExtensionInfoEvent": obj(
        {
            **_ENVELOPE,
            "body": obj(
                {"extensionId": STRING, "eventType": one_of("Update", "Delete")},
                {"hints": array(one_of("ExtensionInfo", "Permissions")), "ownerId": STRING},
            ),
        }
    ),
}
