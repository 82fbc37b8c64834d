"""Users, API keys and refresh tokens as documents of the `identity` kind (both backends).

Each is one document: `event.id` = `user:NAME`, `key:ID` or `refresh:DIGEST`, the fields under
`watchkeeper.identity`. Secrets are never stored: passwords as argon2 hashes, keys and refresh
tokens as SHA-256 digests. Every write is made visible before it returns (a login right after
`users add` must find the user on Elasticsearch too).
"""
from __future__ import annotations

from watchkeeper import timeutil
from watchkeeper.store.base import Query, Store

DATASET = "watchkeeper.identity."


def _doc(kind: str, key: str, owner: str, fields: dict, created: float) -> dict:
    return {"@timestamp": timeutil.format(created),
            "event": {"id": f"{kind}:{key}", "kind": "state", "dataset": DATASET + kind},
            "user": {"name": owner}, "watchkeeper": {"identity": fields}}


def fields(doc: dict | None) -> dict | None:
    return None if doc is None else doc["watchkeeper"]["identity"]


class IdentityStore:
    def __init__(self, store: Store):
        self.store = store

    def _get(self, kind: str, key: str) -> dict | None:
        found = self.store.get_by_ids("identity", [f"{kind}:{key}"])
        return found[0] if found else None

    def _put(self, doc: dict) -> dict:
        self.store.bulk_upsert("identity", [doc])
        self.store.refresh("identity")
        return doc

    def _list(self, kind: str, owner: str | None = None) -> list[dict]:
        terms = {"event.dataset": [DATASET + kind], **({"user.name": [owner]} if owner else {})}
        items, cursor = [], None
        while True:
            page = self.store.search("identity", Query(terms=terms, limit=1000, cursor=cursor,
                                                       order="asc"))
            items += page.items
            cursor = page.next_cursor
            if cursor is None:
                return items

    # users: name, role, site, password_hash, disabled, failures, locked_until
    def get_user(self, name: str) -> dict | None:
        return fields(self._get("user", name))

    def put_user(self, user: dict, created: float) -> dict:
        return fields(self._put(_doc("user", user["name"], user["name"], user, created)))

    def list_users(self) -> list[dict]:
        return [fields(d) for d in self._list("user")]

    # API keys: id, name, role, site, digest, revoked, created, last_used
    def get_key(self, key_id: str) -> dict | None:
        return fields(self._get("key", key_id))

    def put_key(self, key: dict, created: float) -> dict:
        return fields(self._put(_doc("key", key["id"], key.get("created_by", ""), key, created)))

    def list_keys(self) -> list[dict]:
        return [fields(d) for d in self._list("key")]

    # refresh tokens: digest, user, expires, revoked
    def get_refresh(self, digest: str) -> dict | None:
        return fields(self._get("refresh", digest))

    def put_refresh(self, token: dict, created: float) -> dict:
        return fields(self._put(_doc("refresh", token["digest"], token["user"], token, created)))

    def refresh_tokens_of(self, user: str) -> list[dict]:
        return [fields(d) for d in self._list("refresh", owner=user)]
