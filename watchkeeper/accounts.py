"""Accounts: log in, refresh, log out, resolve an API key; create and disable users and keys.

Shared by the API and the CLI. Every login, failure, key failure and change is audited on the
hash chain. Repeated failed logins lock the account for a while (AuthSettings).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from watchkeeper import identity as ident
from watchkeeper.config import AuthSettings
from watchkeeper.identity import AuthError, Principal
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import Store
from watchkeeper.store.identity import IdentityStore

KEY_TOUCH_SECONDS = 60     # last_used is written at most this often per key


class LockedOut(AuthError):
    """Too many failed logins: retry after `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins: try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    principal: Principal


class Accounts:
    def __init__(self, store: Store, settings: AuthSettings, secret: str,
                 sites: dict[str, str | None] | None = None):
        self.store = store
        self.ids = IdentityStore(store)
        self.settings = settings
        self.secret = secret
        self.sites = sites          # inventory id -> parent; None = no inventory (any site)
        self._by_source: dict[str, deque[float]] = {}   # address -> recent failure times
        self._source_lock = threading.Lock()

    def audit(self, action: str, actor: str, **kw) -> None:
        self.store.append_audit(audit_record(action, actor, **kw))

    def check_site(self, site: str) -> str:
        if site != ident.ROOT and self.sites is not None and site not in self.sites:
            raise ValueError(f"site {site!r} is not in the inventory: use one of "
                             f"{sorted(self.sites)[:20]} or / (root)")
        return site

    # -- people -------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, site: str, password: str, actor: str) -> dict:
        if role not in ident.ROLES:
            raise ValueError(f"role {role!r}: one of {', '.join(ident.ROLES)}")
        if self.ids.get_user(name):
            raise ValueError(f"user {name!r} exists")
        if len(password) < 12:
            raise ValueError("password: at least 12 characters")
        user = {"name": name, "role": role, "site": self.check_site(site), "disabled": False,
                "password_hash": ident.hash_password(password), "failures": 0,
                "locked_until": 0.0, "created_by": actor}
        self.ids.put_user(user, time.time())
        self.audit("user.create", actor, object_kind="user", object_id=name,
                   changes={"role": {"to": role}, "site": {"to": site}})
        return user

    def set_password(self, name: str, password: str, actor: str) -> None:
        user = self._user(name)
        user.update(password_hash=ident.hash_password(password), failures=0, locked_until=0.0)
        self.ids.put_user(user, time.time())
        self.audit("user.password", actor, object_kind="user", object_id=name)

    def set_disabled(self, name: str, disabled: bool, actor: str) -> dict:
        user = self._user(name)
        before = user["disabled"]
        user["disabled"] = disabled
        self.ids.put_user(user, time.time())
        if disabled:
            for token in self.ids.refresh_tokens_of(name):
                self._revoke(token)
        self.audit("user.disable" if disabled else "user.enable", actor, object_kind="user",
                   object_id=name, changes={"disabled": {"from": before, "to": disabled}})
        return user

    def _user(self, name: str) -> dict:
        user = self.ids.get_user(name)
        if user is None:
            raise KeyError(name)
        return user

    # -- logging in -----------------------------------------------------------------------------
    def login(self, name: str, password: str, source_ip: str | None = None) -> TokenPair:
        now = time.time()
        self._check_source(source_ip, now)
        user = self.ids.get_user(name)
        if user and user["locked_until"] > now:
            self.audit("auth.login", name, outcome="failure", message="locked out",
                       source_ip=source_ip)
            raise LockedOut(int(user["locked_until"] - now) + 1)
        good = ident.verify_password(user["password_hash"] if user else ident.dummy_hash(),
                                     password)
        if not good or user is None or user["disabled"]:
            self._failed(user, name, now, source_ip)
            raise AuthError("wrong user name or password")
        if user["failures"]:
            user.update(failures=0, locked_until=0.0)
            self.ids.put_user(user, now)
        self.audit("auth.login", name, source_ip=source_ip)
        return self._issue(Principal(name, user["role"], user["site"]), now)

    def _check_source(self, source_ip: str | None, now: float) -> None:
        """A password spray over many names from one address is throttled here."""
        if not source_ip:
            return
        with self._source_lock:
            recent = self._by_source.get(source_ip)
            while recent and recent[0] <= now - self.settings.lockout_seconds:
                recent.popleft()
            if recent is not None and len(recent) >= self.settings.max_failures_per_source:
                retry = int(recent[0] + self.settings.lockout_seconds - now) + 1
                self.audit("auth.login", "?", outcome="failure", source_ip=source_ip,
                           message="address throttled")
                raise LockedOut(retry)

    def _failed(self, user: dict | None, name: str, now: float, source_ip: str | None) -> None:
        if source_ip:
            with self._source_lock:
                self._by_source.setdefault(source_ip, deque()).append(now)
        reason = "unknown user" if user is None else \
            "disabled" if user["disabled"] else "wrong password"
        if user is not None and not user["disabled"]:
            user["failures"] = user["failures"] + 1
            if user["failures"] >= self.settings.max_failures:
                user.update(failures=0, locked_until=now + self.settings.lockout_seconds)
                reason += f"; locked for {self.settings.lockout_seconds} s"
            self.ids.put_user(user, now)
        self.audit("auth.login", name, outcome="failure", message=reason, source_ip=source_ip)

    def _issue(self, principal: Principal, now: float) -> TokenPair:
        refresh = ident.new_secret()
        self.ids.put_refresh({"digest": ident.token_digest(refresh), "user": principal.name,
                              "expires": now + self.settings.refresh_ttl_seconds,
                              "revoked": False}, now)
        access = ident.issue_access_token(principal, self.secret,
                                          self.settings.access_ttl_seconds, now)
        return TokenPair(access, refresh, self.settings.access_ttl_seconds, principal)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate: the presented token is revoked and a new pair issued. A revoked token
        presented again means it leaked: every refresh token of that user is revoked."""
        now = time.time()
        token = self.ids.get_refresh(ident.token_digest(refresh_token))
        if token is None or token["expires"] <= now:
            raise AuthError("refresh token unknown or expired: log in again")
        if token["revoked"]:
            for other in self.ids.refresh_tokens_of(token["user"]):
                self._revoke(other)
            self.audit("auth.refresh", token["user"], outcome="failure",
                       message="revoked refresh token reused: all sessions revoked")
            raise AuthError("refresh token revoked: log in again")
        user = self.ids.get_user(token["user"])
        if user is None or user["disabled"]:
            raise AuthError("account disabled")
        self._revoke(token)
        return self._issue(Principal(user["name"], user["role"], user["site"]), now)

    def logout(self, refresh_token: str, actor: str) -> bool:
        token = self.ids.get_refresh(ident.token_digest(refresh_token))
        if token is None or token["user"] != actor:
            return False
        self._revoke(token)
        self.audit("auth.logout", actor)
        return True

    def _revoke(self, token: dict) -> None:
        if not token["revoked"]:
            token["revoked"] = True
            self.ids.put_refresh(token, time.time())

    def principal_from_access(self, token: str) -> Principal:
        claims = ident.read_access_token(token, self.secret)
        user = self.ids.get_user(claims["sub"])      # disabling takes effect at once
        if user is None or user["disabled"]:
            raise AuthError("account disabled")
        return Principal(user["name"], user["role"], user["site"])

    # -- machines -------------------------------------------------------------------------------
    def create_key(self, name: str, role: str, site: str, actor: str) -> tuple[dict, str]:
        """(the stored key, the whole key): the key itself is shown once and never stored."""
        if role not in ident.ROLES:
            raise ValueError(f"role {role!r}: one of {', '.join(ident.ROLES)}")
        key_id, whole = ident.new_api_key()
        secret = ident.split_api_key(whole)[1]
        now = time.time()
        key = {"id": key_id, "name": name, "role": role, "site": self.check_site(site),
               "digest": ident.token_digest(secret), "revoked": False, "created": now,
               "created_by": actor, "last_used": None}
        self.ids.put_key(key, now)
        self.audit("key.create", actor, object_kind="key", object_id=key_id,
                   changes={"role": {"to": role}, "site": {"to": site}})
        return key, whole

    def revoke_key(self, key_id: str, actor: str) -> dict:
        key = self.ids.get_key(key_id)
        if key is None:
            raise KeyError(key_id)
        if not key["revoked"]:
            key["revoked"] = True
            self.ids.put_key(key, key["created"])
            self.audit("key.revoke", actor, object_kind="key", object_id=key_id)
        return key

    def list_keys(self) -> list[dict]:
        return [{k: v for k, v in key.items() if k != "digest"} for key in self.ids.list_keys()]

    def principal_from_key(self, whole: str, source_ip: str | None = None) -> Principal:
        parts = ident.split_api_key(whole)
        key = self.ids.get_key(parts[0]) if parts else None
        matches = key is not None and ident.same_digest(key["digest"],
                                                        ident.token_digest(parts[1]))
        if not matches or key["revoked"]:
            reason = "unknown key" if key is None else "wrong secret" if not matches else \
                "revoked"
            self.audit("auth.key", f"key:{parts[0] if parts else '?'}", outcome="failure",
                       message=reason, source_ip=source_ip)
            raise AuthError("invalid API key")
        now = time.time()
        if (key["last_used"] or 0) < now - KEY_TOUCH_SECONDS:
            key["last_used"] = now
            self.ids.put_key(key, key["created"])
        return Principal(key["id"], key["role"], key["site"], kind="key")
