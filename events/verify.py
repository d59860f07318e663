"""Who is posting: RingCentral's Validation-Token handshake and the Verification-Token check.

RingCentral signs nothing; the verification token we chose when creating the subscription comes
back in a header on every notification, so it is compared in constant time. Some revisions of the
docs name that header `Validation-Token`, so a matching one is accepted too.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr

VALIDATION_HEADER = "validation-token"
VERIFICATION_HEADER = "verification-token"
# The handshake reply must stay within 1024 bytes in all; leave room for the status line and
# the other headers.
MAX_ECHO_BYTES = 512


def handshake_token(token: str | None, body: bytes) -> str | None:
    """The token to echo when this request (its Validation-Token header and body) is a
    subscription handshake, else None."""
    if token and not body.strip() and len(token) <= MAX_ECHO_BYTES:
        return token
    return None


def token_matches(expected: SecretStr, *candidates: str | None) -> bool:
    """True when any candidate equals the configured token (constant time), or none is set."""
    secret = expected.get_secret_value().encode()
    if not secret:
        return True
    matched = False
    for candidate in candidates:
        if candidate is not None:
            # No short-circuit: every candidate costs the same comparison.
            matched |= hmac.compare_digest(candidate.encode(), secret)
    return matched
