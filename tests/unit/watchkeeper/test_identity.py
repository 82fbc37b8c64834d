"""Password hashes, access tokens, API key format and the secret-key check."""
from __future__ import annotations

import time

import jwt
import pytest

from watchkeeper import identity as ident
from watchkeeper.config import ConfigError, load_settings
from watchkeeper.identity import AuthError, Principal

SECRET = "unit-tests-only-" + "k3y-" * 6


def test_password_hash_is_argon2_and_salted():
    first, second = ident.hash_password("correct horse"), ident.hash_password("correct horse")
    assert first.startswith("$argon2id$") and first != second
    assert ident.verify_password(first, "correct horse")
    assert not ident.verify_password(first, "correct horsE")
    assert not ident.verify_password("not a hash", "correct horse")
    assert not ident.verify_password(ident.dummy_hash(), "")


def test_access_token_round_trip_and_expiry():
    who = Principal("li.wei", "analyst", "county-a1")
    claims = ident.read_access_token(ident.issue_access_token(who, SECRET, 60), SECRET)
    assert (claims["sub"], claims["role"], claims["site"]) == ("li.wei", "analyst", "county-a1")
    old = ident.issue_access_token(who, SECRET, 60, now=time.time() - 120)
    with pytest.raises(AuthError, match="expired"):
        ident.read_access_token(old, SECRET)


@pytest.mark.parametrize("forge", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),                 # bad signature
    lambda t: ident.issue_access_token(Principal("x", "analyst"), "another-" + SECRET, 60),
    lambda t: jwt.encode({"sub": "x", "exp": time.time() + 60, "typ": "refresh"}, SECRET,
                         algorithm="HS256"),                                        # wrong type
    lambda t: jwt.encode({"sub": "x", "exp": time.time() + 60, "typ": "access"}, None,
                         algorithm="none"),                                         # unsigned
    lambda t: "garbage",
])
def test_forged_tokens_are_refused(forge):
    token = forge(ident.issue_access_token(Principal("x", "analyst"), SECRET, 60))
    with pytest.raises(AuthError):
        ident.read_access_token(token, SECRET)


def test_api_key_format_and_digest():
    key_id, whole = ident.new_api_key()
    assert ident.split_api_key(whole)[0] == key_id
    assert ident.split_api_key("wk_nosecret") is None and ident.split_api_key("abc") is None
    secret = ident.split_api_key(whole)[1]
    assert ident.same_digest(ident.token_digest(secret), ident.token_digest(secret))
    assert len(secret) >= 40                           # 256 bits, url-safe base64


@pytest.mark.parametrize("secret, needle", [
    ("changeme", "placeholder"), ("secret", "placeholder"), ("a" * 40, "placeholder"),
    ("short-but-varied-123", "characters"),
])
def test_weak_secrets_are_refused_at_start(secret, needle, monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_AUTH__SECRET_KEY", secret)
    with pytest.raises(ConfigError, match=needle) as failure:
        load_settings()
    assert "auth.secret_key" in str(failure.value) and "token_urlsafe" in str(failure.value)


def test_a_strong_secret_is_accepted(monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_AUTH__SECRET_KEY", SECRET)
    assert load_settings().auth.secret_key == SECRET
