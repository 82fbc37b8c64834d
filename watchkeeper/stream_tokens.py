"""Short-lived, single-purpose tokens for the live feed.

A browser's EventSource cannot send an Authorization header, so the page asks for a stream
token (with its usual credentials) and opens `/api/v1/stream?token=…`. The token is a JWT of
type `stream`: it opens the live feed and nothing else (every other route refuses it: it is
not an access token), lives `token_seconds` (60 s by default, enough to connect; an open
stream is not cut when it expires), and the account or key behind it is checked again on every
connection (a disabled user or revoked key cannot reconnect).
"""
from __future__ import annotations

import time

import jwt

from watchkeeper.identity import ALGORITHM, AuthError, Principal, new_secret

TYP = "stream"


def issue_stream_token(principal: Principal, secret: str, ttl_seconds: int,
                       now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {"sub": principal.name, "role": principal.role, "site": principal.site,
              "kind": principal.kind, "typ": TYP, "iat": int(now),
              "exp": int(now + ttl_seconds), "jti": new_secret(9)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def principal_from_stream_token(token: str, secret: str, accounts) -> Principal:
    """The principal, re-checked against the accounts (AuthError if not valid now)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "exp", "typ"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("stream token expired: ask for a new one") from None
    except jwt.PyJWTError:
        raise AuthError("invalid stream token") from None
    if claims.get("typ") != TYP:
        raise AuthError("invalid stream token")
    if claims.get("kind") == "key":
        key = accounts.ids.get_key(claims["sub"])
        if key is None or key["revoked"]:
            raise AuthError("API key revoked")
        return Principal(key["id"], key["role"], key["site"], kind="key")
    user = accounts.ids.get_user(claims["sub"])
    if user is None or user["disabled"]:
        raise AuthError("account disabled")
    return Principal(user["name"], user["role"], user["site"])
