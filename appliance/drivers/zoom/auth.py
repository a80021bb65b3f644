"""The Meeting SDK JWT that ``SDKAuth`` takes.

Zoom's Meeting SDK authenticates an app with an HS256 JWT signed by the app's client
secret, carrying the client ID as ``appKey`` and the token's lifetime in ``iat``,
``exp`` and ``tokenExp`` (Zoom wants at least 30 minutes and at most 48 hours). A
fresh token is made for every join, so a long-lived worker never holds an expired one
and the secret is used only in this function. Neither the secret nor the token is ever
logged or put in an exception message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import jwt

DEFAULT_LIFETIME_S = 2 * 3600
# Zoom rejects a token whose iat lies in its future; backdating absorbs a slow clock.
CLOCK_SKEW_S = 30


@dataclass(frozen=True)
class SDKCredentials:
    """The app's Meeting SDK client ID (``key``) and client secret."""

    key: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key or not self.secret:
            raise ValueError("the SDK key and secret must both be non-empty")


def make_sdk_jwt(
    credentials: SDKCredentials,
    *,
    now: float | None = None,
    lifetime_s: int = DEFAULT_LIFETIME_S,
) -> str:
    """A signed JWT for ``SDKAuth``; ``now`` (Unix seconds) is for tests."""
    issued = int(time.time() if now is None else now) - CLOCK_SKEW_S
    expires = issued + CLOCK_SKEW_S + lifetime_s
    claims = {
        "appKey": credentials.key,
        "iat": issued,
        "exp": expires,
        "tokenExp": expires,
    }
    return jwt.encode(claims, credentials.secret, algorithm="HS256")
