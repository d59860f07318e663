"""The endpoint → group table agrees with RingCentral's spec (`x-throttling-group`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.ringcentral.throttling import ENDPOINTS, group_for

SPEC = (
    Path(__file__).resolve().parents[3]
    / ".."
    / "shared"
    / "reference"
    / "ringcentral-openapi"
    / "rc-public-openapi.yml"
)


def _operation_groups() -> dict[tuple[str, str], str]:
    """Scan the spec's `paths` for each operation's throttling group without parsing 1.7 MB."""
    lines = SPEC.read_text(encoding="utf-8").splitlines()
    wanted = {template for _, template, _ in ENDPOINTS}
    found: dict[tuple[str, str], str] = {}
    path = method = None
    for line in lines:
        if line[:3] in {"  /", '  "', "  '"} and line.rstrip().endswith(":"):
            path = line.strip()[:-1].strip("'\"")
            method = None
        elif path in wanted and line.startswith("    ") and not line.startswith("     "):
            name = line.strip().rstrip(":")
            method = name.upper() if name in {"get", "post", "put", "delete", "patch"} else None
        elif path in wanted and method and line.strip().startswith("x-throttling-group:"):
            found[(method, path)] = line.split(":", 1)[1].strip().lower()
    return found


@pytest.mark.skipif(not SPEC.exists(), reason="RingCentral's spec is not beside the repository")
def test_groups_match_the_spec() -> None:
    spec = _operation_groups()
    for method, template, group in ENDPOINTS:
        assert spec.get((method, template)) == group, (method, template)


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("GET", "/restapi/v1.0/account/~/extension", "medium"),
        ("GET", "/restapi/v1.0/account/400386146004/extension/", "medium"),
        ("GET", "/restapi/v1.0/account/~/extension/123", "light"),
        ("get", "/restapi/v1.0/account/~", "light"),
        ("POST", "/restapi/oauth/token", "auth"),
        ("POST", "/restapi/v1.0/subscription", "medium"),
        ("POST", "/restapi/v1.0/subscription/abc-1/renew", "light"),
        ("GET", "/scim/v2/Users/42", "light"),
        ("GET", "/restapi/v1.0/account/~/call-log", "heavy"),
    ],
)
def test_group_for(method: str, path: str, group: str) -> None:
    assert group_for(method, path) == group


def test_unknown_endpoint_is_refused() -> None:
    with pytest.raises(LookupError):
        group_for("GET", "/restapi/v1.0/account/~/device")
