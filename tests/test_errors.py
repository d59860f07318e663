"""One classification decides retry vs dead letter for every failure a job can meet."""

from __future__ import annotations

import httpx
import pydantic
import pytest
import redis.exceptions
import sqlalchemy.exc

from workers.errors import (
    ApiError,
    AuthError,
    InvalidResponse,
    NetworkError,
    RateLimited,
    ServerUnavailable,
    TransientError,
    classify,
)


class _Model(pydantic.BaseModel):
    n: int


def _validation_error() -> pydantic.ValidationError:
    try:
        _Model.model_validate({"n": "x"})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RateLimited("light", 12.0), "transient"),
        (ServerUnavailable("GET /x: HTTP 503", status=503), "transient"),
        (NetworkError("GET /x: ConnectError"), "transient"),
        (TransientError("waiting for login"), "transient"),
        (httpx.ConnectError("refused"), "transient"),
        (httpx.ReadTimeout("slow"), "transient"),
        (redis.exceptions.ConnectionError("down"), "transient"),
        (redis.exceptions.TimeoutError("slow"), "transient"),
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, OSError("refused")), "transient"),
        (sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("closed")), "transient"),
        (
            sqlalchemy.exc.DBAPIError(
                "SELECT 1", {}, Exception("closed mid-query"), connection_invalidated=True
            ),
            "transient",
        ),
        (sqlalchemy.exc.TimeoutError("pool exhausted"), "transient"),
        (sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")), "permanent"),
        (ApiError("GET /x: HTTP 400", status=400, error_code="CMN-101"), "permanent"),
        (AuthError("bad JWT", status=400, error_code="OAU-251"), "permanent"),
        (InvalidResponse("not an Extension"), "permanent"),
        (_validation_error(), "permanent"),
        (KeyError("a bug"), "permanent"),
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_errors_carry_their_details() -> None:
    limited = RateLimited("medium", 7.5)
    assert limited.group == "medium"
    assert limited.retry_after == 7.5
    assert "medium" in str(limited)
    api = ApiError("GET /x: HTTP 404 CMN-102", status=404, error_code="CMN-102")
    assert (api.status, api.error_code) == (404, "CMN-102")
    assert isinstance(AuthError("x", status=401, error_code=None), ApiError)
