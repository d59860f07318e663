"""What can go wrong when talking to RingCentral, and whether trying again can help.

Jobs never inspect status codes themselves: they call `classify(exc)` and either raise arq's
`Retry` (transient) or dead-letter the work with `str(exc)` as the reason (permanent).

Among transient failures, `unreachable(exc)` picks out outages of our own stores: the identity
database or Redis refusing, resetting or not answering. Those are transient for as long as they
last: a job is never given up because of them (its dead letter would go to the store that is away).

    RingCentralError
    ├── TransientError              try again later; `retry_after` hints when (seconds or None)
    │   ├── RateLimited             a group's budget is exhausted or penalised past our wait cap
    │   ├── ServerUnavailable       5xx (503 included) still failing after a few quick retries
    │   └── NetworkError            connection refused/reset, timeouts, after a few quick retries
    └── PermanentError              the same request will fail the same way: dead-letter it
        ├── ApiError                a 4xx answer; carries `status` and RingCentral's `error_code`
        │   └── AuthError           bad app credentials or JWT, or a token refused twice in a row
        └── InvalidResponse         a 2xx body that does not match the model we expected

Messages carry method, path, status, errorCode and RingCentral's message, never a token,
a secret or a request header.
"""

from __future__ import annotations

import errno
import socket
from typing import Final, Literal

import httpx
import pydantic
import redis.exceptions
import sqlalchemy.exc

Kind = Literal["transient", "permanent"]


class RingCentralError(Exception):
    """Base of every error raised by the RingCentral client."""


class TransientError(RingCentralError):
    """Trying again later may succeed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """The group cannot send within the caller's wait cap (budget spent or a 429 penalty)."""

    def __init__(self, group: str, retry_after: float) -> None:
        super().__init__(
            f"rate limit group {group!r} has no budget for {retry_after:.1f} s",
            retry_after=retry_after,
        )
        self.group = group


class ServerUnavailable(TransientError):
    """RingCentral answered 5xx on every attempt."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status


class NetworkError(TransientError):
    """No usable answer at all: connection errors and timeouts on every attempt."""


class PermanentError(RingCentralError):
    """The same request would fail the same way; retrying only wastes budget."""


class ApiError(PermanentError):
    """A 4xx answer, typed by RingCentral's `errorCode` (or SCIM's `scimType`)."""

    def __init__(self, message: str, *, status: int, error_code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class AuthError(ApiError):
    """The app credentials or the JWT were refused: a human must fix the configuration."""


class InvalidResponse(PermanentError):
    """A successful answer whose body does not have the shape we rely on."""


def classify(exc: BaseException) -> Kind:
    """Say whether the work that raised `exc` should be retried or dead-lettered.

    Unknown exceptions are permanent: a bug retried forever hides itself, a dead letter with its
    reason gets looked at.
    """
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, PermanentError):
        return "permanent"
    if isinstance(exc, httpx.TransportError) or unreachable(exc):
        return "transient"
    if isinstance(exc, TimeoutError):  # another holder kept a lock, say
        return "transient"
    if isinstance(exc, pydantic.ValidationError):
        return "permanent"
    return "permanent"


# A host or network that cannot be reached at all (rather than a refused connection).
_NO_ROUTE: Final = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}
)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says our own database or Redis cannot be reached right now.

    RingCentral's and downstream endpoints' failures never count (the client wraps them in
    `RingCentralError`, httpx in its own tree): what is left of the socket errors is ours.
    """
    if isinstance(exc, RingCentralError | httpx.HTTPError):
        return False
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return True
    # The database away or restarting (connection refused, reset mid-query, SQLite busy or its
    # file out of reach), or no pooled connection came free in time.
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return True
    # asyncpg's own: refused or reset connections, a connect that got no answer in time (a bare
    # TimeoutError, as is a job cut by its own time limit; a lock's wait is not an outage), a
    # host with no route or a name that does not resolve.
    if isinstance(exc, ConnectionError | socket.gaierror) or type(exc) is TimeoutError:
        return True
    return isinstance(exc, OSError) and exc.errno in _NO_ROUTE
