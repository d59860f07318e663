"""One classification decides retry vs dead letter for every failure a job can meet."""

from __future__ import annotations

import errno
import socket

import httpx
import pydantic
import pytest
import redis.exceptions
import sqlalchemy.exc

from workers.lock import LockTimeout
from workers.ringcentral.errors import (
    ApiError,
    AuthError,
    InvalidResponse,
    NetworkError,
    RateLimited,
    ServerUnavailable,
    TransientError,
    classify,
    unreachable,
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
        (ConnectionRefusedError(111, "Connect call failed"), "transient"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "transient"),
        (socket.gaierror(-3, "Temporary failure in name resolution"), "transient"),
        (TimeoutError(), "transient"),
        (LockTimeout("held by another process"), "transient"),
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


@pytest.mark.parametrize(
    ("exc", "ours"),
    [
        (sqlalchemy.exc.OperationalError("INSERT", {}, Exception("unable to open file")), True),
        (sqlalchemy.exc.TimeoutError("pool exhausted"), True),
        (redis.exceptions.ConnectionError("down"), True),
        (redis.exceptions.TimeoutError("slow"), True),
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (ConnectionResetError(104, "reset by peer"), True),
        (TimeoutError(), True),  # a connect (or a whole job) that got no answer in time
        (OSError(errno.EHOSTUNREACH, "No route to host"), True),
        (socket.gaierror(-3, "Temporary failure in name resolution"), True),
        (LockTimeout("held by another process"), False),
        (OSError(errno.EACCES, "Permission denied"), False),
        (NetworkError("GET /x: ConnectError"), False),
        (ServerUnavailable("GET /x: HTTP 503", status=503), False),
        (httpx.ConnectError("refused"), False),
        (sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (KeyError("a bug"), False),
    ],
)
def test_outages_of_our_own_stores_are_told_apart(exc: BaseException, ours: bool) -> None:
    """What `unreachable` says is retried for as long as it lasts: ours only, never a
    RingCentral or downstream failure (those are dead-lettered once out of tries)."""
    assert unreachable(exc) is ours
    if ours:
        assert classify(exc) == "transient"


def test_errors_carry_their_details() -> None:
    limited = RateLimited("medium", 7.5)
    assert limited.group == "medium"
    assert limited.retry_after == 7.5
    assert "medium" in str(limited)
    api = ApiError("GET /x: HTTP 404 CMN-102", status=404, error_code="CMN-102")
    assert (api.status, api.error_code) == (404, "CMN-102")
    assert isinstance(AuthError("x", status=401, error_code=None), ApiError)
