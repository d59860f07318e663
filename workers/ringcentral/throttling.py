"""Which rate-limit group each endpoint we call belongs to, known before the request is sent.

Taken from the `x-throttling-group` of each operation in RingCentral's OpenAPI spec (a test checks
this table against the spec). Group names are lower case, as `X-Rate-Limit-Group` sends them.
"""

from __future__ import annotations

import re

LIGHT = "light"
MEDIUM = "medium"
HEAVY = "heavy"
AUTH = "auth"

# (method, path template as in the spec, group)
ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("POST", "/restapi/oauth/token", AUTH),
    ("GET", "/restapi/v1.0/account/{accountId}", LIGHT),
    ("GET", "/restapi/v1.0/account/{accountId}/extension", MEDIUM),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}", LIGHT),
    ("PUT", "/restapi/v1.0/account/{accountId}/extension/{extensionId}", MEDIUM),
    ("DELETE", "/restapi/v2/accounts/{accountId}/extensions", HEAVY),
    ("GET", "/restapi/v1.0/account/{accountId}/assigned-role", MEDIUM),
    ("GET", "/restapi/v1.0/account/{accountId}/extension/{extensionId}/assigned-role", LIGHT),
    ("GET", "/restapi/v1.0/subscription", LIGHT),
    ("POST", "/restapi/v1.0/subscription", MEDIUM),
    ("GET", "/restapi/v1.0/subscription/{subscriptionId}", LIGHT),
    ("PUT", "/restapi/v1.0/subscription/{subscriptionId}", MEDIUM),
    ("DELETE", "/restapi/v1.0/subscription/{subscriptionId}", MEDIUM),
    ("POST", "/restapi/v1.0/subscription/{subscriptionId}/renew", LIGHT),
    ("GET", "/scim/v2/Users", LIGHT),
    ("GET", "/scim/v2/Users/{scimUserId}", LIGHT),
)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$")


_COMPILED = tuple((method, _pattern(template), group) for method, template, group in ENDPOINTS)


def group_for(method: str, path: str) -> str:
    """The group of `method path` (a concrete path, query string excluded)."""
    method = method.upper()
    for candidate, pattern, group in _COMPILED:
        if candidate == method and pattern.match(path):
            return group
    raise LookupError(f"no rate-limit group known for {method} {path}")
