"""The console's sessions: a login with RINGSYNC_API_TOKEN opens one, a cookie names it.

The cookie holds a random session id and its HMAC, never the token. The HMAC key is derived
(HKDF-SHA256) from the first key of RINGSYNC_SECRET_KEY, or, when that is unset (one-account
deployments need none), from RINGSYNC_API_TOKEN under a label of its own, so the key is never the
token itself. Sessions live in Redis with a lifetime: logout ends one for good, not just in the
browser. Each session's CSRF token is an HMAC of its id; every state-changing form carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from events.settings import Settings

COOKIE: Final = "ringsync_console"
CSRF_FIELD: Final = "csrf_token"
LIFETIME: Final = 12 * 3600
_FROM_SECRET_KEY: Final = b"ringsync console session key v1"
_FROM_API_TOKEN: Final = b"ringsync console session key v1 (from RINGSYNC_API_TOKEN)"


def session_key(settings: Settings) -> bytes:
    """The key signing session cookies and CSRF tokens (see the module docstring)."""
    secret = settings.secret_key.get_secret_value().split(",")[0].strip()
    label = _FROM_SECRET_KEY
    if not secret:
        secret, label = settings.api_token.get_secret_value(), _FROM_API_TOKEN
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label)
    return hkdf.derive(secret.encode())


def token_matches(settings: Settings, presented: str) -> bool:
    """Whether `presented` is RINGSYNC_API_TOKEN (constant time; an unset token matches nothing)."""
    expected = settings.api_token.get_secret_value()
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str


class Sessions:
    """Open, find and end console sessions."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self._settings = settings
        self._redis = redis
        self._key = session_key(settings)

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _redis_key(self, session_id: str) -> str:
        # Stored under a hash of the id: a look at Redis gives nobody a usable cookie.
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return self._settings.root_key("console", "session", digest)

    async def open(self, response: Response, *, secure: bool) -> Session:
        session_id = secrets.token_urlsafe(32)
        await self._redis.set(self._redis_key(session_id), "1", ex=LIFETIME)
        response.set_cookie(
            COOKIE,
            f"{session_id}.{self._sign('cookie', session_id)}",
            max_age=LIFETIME,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
        return Session(session_id, self._sign("csrf", session_id))

    async def find(self, request: Request) -> Session | None:
        """The request's live session, or None (no cookie, a forged one, or one that ended)."""
        session_id, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if not session_id or not hmac.compare_digest(
            signature.encode(), self._sign("cookie", session_id).encode()
        ):
            return None
        if not await self._redis.exists(self._redis_key(session_id)):
            return None
        return Session(session_id, self._sign("csrf", session_id))

    async def end(self, session: Session, response: Response, *, secure: bool) -> None:
        await self._redis.delete(self._redis_key(session.id))
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="strict")


def csrf_ok(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), session.csrf.encode())


def is_https(request: Request) -> bool:
    """Behind HTTPS (uvicorn applies X-Forwarded-Proto from trusted proxies to the scheme)."""
    return request.url.scheme == "https"
