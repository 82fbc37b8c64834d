"""Who may use the API: roles, principals, password hashes, tokens and the JWT secret.

Roles follow MLPS 2.0 (GB/T 22239-2019 §8.1.5.1–8.1.5.3): three separated administrators
(system, security, audit), none doing another's job, plus the people who work alerts.
Nothing here knows about HTTP: the API (api/security.py) and the CLI both build on it.
"""
from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["viewer", "analyst", "responder", "system_admin", "security_admin",
               "audit_admin"]
ROLES: tuple[Role, ...] = ("viewer", "analyst", "responder", "system_admin", "security_admin",
                           "audit_admin")
# Only someone with a shell on the host (the CLI) creates the three administrators: a system
# administrator creating an audit administrator could then read the audit of their own acts.
ADMIN_ROLES = frozenset({"system_admin", "security_admin", "audit_admin"})
ROOT = "/"          # the virtual site above every top-level site: sees everything

PLACEHOLDER_SECRETS = {"changeme", "change-me", "change_me", "secret", "placeholder", "default",
                       "password", "watchkeeper", "example", "test", "dev", "xxx"}
MIN_SECRET_CHARS = 32
ALGORITHM = "HS256"

_hasher = PasswordHasher()   # argon2id, the library's (RFC 9106 low-memory) defaults


class AuthError(Exception):
    """Credentials missing, wrong, expired or revoked: the API answers 401."""


@dataclass(frozen=True)
class Principal:
    """Whoever is acting: a person (kind user) or a machine (kind key)."""
    name: str
    role: Role
    site: str = ROOT
    kind: Literal["user", "key"] = "user"

    @property
    def actor(self) -> str:
        return self.name if self.kind == "user" else f"key:{self.name}"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash no password matches: checking an unknown user costs what a known one does."""
    return _hasher.hash(secrets.token_urlsafe(16))


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """Refresh tokens and API keys are random (≥ 256 bits): SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_secret(secret: str | None) -> str:
    """The JWT signing secret: refuse placeholders and short ones with the fix in the message."""
    hint = ("set WATCHKEEPER_AUTH__SECRET_KEY (or auth.secret_key in the config) to at least "
            f"{MIN_SECRET_CHARS} random characters, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
    if secret is None:
        raise ValueError(f"no API secret key: {hint}")
    if secret.strip().lower() in PLACEHOLDER_SECRETS or len(set(secret)) < 8:
        raise ValueError(f"the API secret key is a placeholder: {hint}")
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"the API secret key has {len(secret)} characters: {hint}")
    return secret


def issue_access_token(principal: Principal, secret: str, ttl_seconds: int,
                       now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {"sub": principal.name, "role": principal.role, "site": principal.site,
              "typ": "access", "iat": int(now), "exp": int(now + ttl_seconds),
              "jti": new_secret(9)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_access_token(token: str, secret: str) -> dict:
    """The claims of a valid access token; AuthError otherwise (expired, forged, wrong type)."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "exp", "typ"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("access token expired: refresh it or log in again") from None
    except jwt.PyJWTError:
        raise AuthError("invalid access token") from None
    if claims.get("typ") != "access":
        raise AuthError("invalid access token")
    return claims


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


API_KEY_PREFIX = "wk_"


def new_api_key() -> tuple[str, str]:
    """(key id, the whole key shown once): `wk_<id>_<secret>`; only the secret's digest is kept."""
    key_id = secrets.token_hex(6)
    return key_id, f"{API_KEY_PREFIX}{key_id}_{new_secret(32)}"


def split_api_key(key: str) -> tuple[str, str] | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(API_KEY_PREFIX):].partition("_")
    if not sep or not key_id or not secret or len(key) > 256:
        return None
    return key_id, secret
