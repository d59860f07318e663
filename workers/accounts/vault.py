"""Credentials at rest: Fernet under RINGSYNC_SECRET_KEY, several keys to rotate.

The first key encrypts, every key decrypts (MultiFernet), so a new key goes first, `ringsync
accounts rotate-key` re-encrypts every row with it, and the old one can then be dropped.
Neither the keys nor what they protect ever appear in a repr, a log line or an error.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from events.settings import HOW_TO_MAKE_A_FERNET_KEY, Settings


class MissingKey(Exception):
    """RINGSYNC_SECRET_KEY is not set: stored credentials can be neither written nor read."""

    def __init__(self) -> None:
        super().__init__(
            "RINGSYNC_SECRET_KEY is not set; it encrypts stored account credentials: "
            f"{HOW_TO_MAKE_A_FERNET_KEY}"
        )


class UnreadableCredentials(Exception):
    """No key of RINGSYNC_SECRET_KEY decrypts a stored credential (a key was dropped too soon)."""


class Vault:
    """Encrypts and decrypts account credentials with the deployment's keys."""

    def __init__(self, settings: Settings) -> None:
        raw = settings.secret_key.get_secret_value()
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        if not keys:
            raise MissingKey
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def __repr__(self) -> str:
        return "Vault()"

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise UnreadableCredentials(
                "no key in RINGSYNC_SECRET_KEY decrypts a stored credential; "
                "put back the key it was sealed with"
            ) from None

    def reseal(self, sealed: str) -> str:
        """`sealed` under the first key (rotation)."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise UnreadableCredentials(
                "no key in RINGSYNC_SECRET_KEY decrypts a stored credential; "
                "put back the key it was sealed with"
            ) from None
