"""Access and refresh tokens issued by the sandbox, expiring on its advanceable clock."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field

import orjson

from sandbox.clock import Clock

REFRESH_TTL = 604_800


@dataclass(frozen=True)
class Credentials:
    """What the token endpoint accepts; the secrets never show in a repr."""

    client_id: str
    client_secret: str = field(repr=False)
    jwt: str = field(repr=False)

    @classmethod
    def make(
        cls, client_id: str | None = None, client_secret: str | None = None, jwt: str | None = None
    ) -> Credentials:
        """Fill in what was not given with fresh random values (the JWT is well-formed)."""
        return cls(
            client_id or "sbx" + secrets.token_hex(10),
            client_secret or secrets.token_urlsafe(24),
            jwt or invent_jwt(),
        )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def invent_jwt() -> str:
    """A well-formed, unsigned-looking JWT; the sandbox only compares it for equality."""
    header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    claims = _b64(orjson.dumps({"sub": "sandbox", "jti": secrets.token_hex(8)}))
    return f"{header}.{claims}.{_b64(secrets.token_bytes(32))}"


@dataclass
class Grant:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str


class TokenStore:
    """Live tokens by value; a revoke ends the whole session (access and refresh)."""

    def __init__(self, clock: Clock, ttl: int = 3600) -> None:
        self.clock = clock
        self.ttl = ttl
        self._access: dict[str, tuple[float, str]] = {}
        self._refresh: dict[str, tuple[float, str]] = {}

    def issue(self) -> Grant:
        session = secrets.token_hex(8)
        return self._issue(session)

    def _issue(self, session: str) -> Grant:
        now = self.clock.now()
        access = "SBX" + secrets.token_urlsafe(32)
        refresh = "SBR" + secrets.token_urlsafe(32)
        self._access[access] = (now + self.ttl, session)
        self._refresh[refresh] = (now + REFRESH_TTL, session)
        return Grant(access, refresh, self.ttl, session)

    def live(self, token: str) -> bool:
        found = self._access.get(token)
        return found is not None and self.clock.now() < found[0]

    def known(self, token: str) -> bool:
        return token in self._access

    def holds(self, token: str) -> bool:
        """Whether `token` is one of this store's access or refresh tokens (live or not)."""
        return token in self._access or token in self._refresh

    def refresh(self, refresh_token: str) -> Grant | None:
        found = self._refresh.pop(refresh_token, None)
        if found is None or self.clock.now() >= found[0]:
            return None
        return self._issue(found[1])

    def revoke(self, token: str) -> bool:
        found = self._access.get(token) or self._refresh.get(token)
        if found is None:
            return False
        session = found[1]
        for store in (self._access, self._refresh):
            for value in [v for v, (_, s) in store.items() if s == session]:
                del store[value]
        return True
