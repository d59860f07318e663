"""What a usable secret is: not a placeholder left in from an example, and not short.

A deployment started with `change-me` as its verification token, or with the signing secret
printed in the Standard Webhooks specification's examples, has an open door: anyone who read the
same example can post notifications or forge offboarding events. Settings refuse such values at
start-up (empty means "not set", which the commands that need a secret refuse on their own).
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from pydantic import SecretStr

MIN_LENGTH: Final = 16
# A bearer token guarding the API is guessed by nobody: 32 characters or more.
API_TOKEN_LENGTH: Final = 32
# Standard Webhooks: a signing key of 24 to 64 random bytes.
MIN_SIGNING_KEY_BYTES: Final = 24
SIGNING_PREFIX: Final = "whsec_"

HOW_TO_MAKE_ONE: Final = (
    'make one with `python -c "import secrets; print(secrets.token_urlsafe(32))"`'
)
HOW_TO_MAKE_WHSEC: Final = (
    'make one with `python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\"`"
)
FROM_RINGCENTRAL: Final = "use the value from your RingCentral app's credentials"

# Values templates and examples put where a secret goes.
_PLACEHOLDERS: Final = frozenset(
    {"secret", "password", "passwd", "token", "changeme", "changethis", "example", "test"}
)
_PLACEHOLDER_PREFIXES: Final = ("your-", "your_", "<", "{", "replace-", "replace_")
# The signing key of the Standard Webhooks specification's published test vector (its tests
# and examples use it bare and with the `whsec_` prefix): known to everyone, so never a secret.
_PUBLISHED_SIGNING_KEY: Final = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def is_placeholder(raw: str) -> bool:
    """Whether `raw` is a value from a template or example rather than a secret."""
    folded = raw.strip().lower()
    plain = folded.replace("-", "").replace("_", "").replace(" ", "")
    return (
        plain in _PLACEHOLDERS
        or "changeme" in plain
        or folded.startswith(_PLACEHOLDER_PREFIXES)
        or raw.strip().removeprefix(SIGNING_PREFIX) == _PUBLISHED_SIGNING_KEY
    )


def check_secret(value: SecretStr, how: str) -> SecretStr:
    """`value` unless it is a placeholder or shorter than MIN_LENGTH; `how` says how to get one.

    The messages never contain the value.
    """
    raw = value.get_secret_value()
    if not raw:
        return value
    if is_placeholder(raw):
        raise ValueError(f"is a placeholder, not a secret; {how}")
    if len(raw) < MIN_LENGTH:
        raise ValueError(f"is shorter than {MIN_LENGTH} characters; {how}")
    return value


def check_signing_secret(value: SecretStr) -> SecretStr:
    """A Standard Webhooks secret: `whsec_` and the base64 of at least 24 random bytes."""
    raw = check_secret(value, HOW_TO_MAKE_WHSEC).get_secret_value()
    if not raw:
        return value
    if not raw.startswith(SIGNING_PREFIX):
        raise ValueError(
            f"must start with 'whsec_' (a Standard Webhooks secret); {HOW_TO_MAKE_WHSEC}"
        )
    try:
        key = base64.b64decode(raw.removeprefix(SIGNING_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("must be 'whsec_' followed by standard base64") from None
    if len(key) < MIN_SIGNING_KEY_BYTES:
        raise ValueError(
            f"must hold at least {MIN_SIGNING_KEY_BYTES} random bytes; {HOW_TO_MAKE_WHSEC}"
        )
    return value
