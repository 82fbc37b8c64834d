"""`watchkeeper users|keys|audit`: the first administrator from the CLI, keys shown once,
the audit chain verified and exported, a bad secret refused at start."""
from __future__ import annotations

import io
import json
import sys

import pytest

from app import cli
from watchkeeper.store import audit as chain
from watchkeeper.store import open_store

PASSWORD = "first admin password!"


@pytest.fixture
def wk(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/wk.db"

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main([*args, "--store", url])
        out, err = capsys.readouterr()
        return code, out, err
    run.url = url
    return run


def test_first_admin_then_list_disable(wk):
    code, _, err = wk("users", "add", "root", "--role", "system_admin", "--password-stdin",
                      stdin=PASSWORD + "\n")
    assert code == 0, err
    code, out, _ = wk("users", "list")
    assert out.split() == ["root", "system_admin", "/", "active"]
    assert wk("users", "add", "root", "--role", "viewer", "--password-stdin",
              stdin=PASSWORD + "\n")[0] == 2                          # exists
    assert "12 characters" in wk("users", "add", "x", "--role", "viewer", "--password-stdin",
                                 stdin="short\n")[2]
    assert "--role" in wk("users", "add", "y")[2]
    assert wk("users", "disable", "root")[0] == 0
    assert wk("users", "list")[1].split()[-1] == "disabled"
    store = open_store(wk.url)
    try:
        actions = [r["event"]["action"] for r in chain.iter_audit(store)]
        user = store.get_by_ids("identity", ["user:root"])[0]["watchkeeper"]["identity"]
    finally:
        store.close()
    assert actions == ["user.create", "user.disable"]
    assert user["password_hash"].startswith("$argon2id$") and PASSWORD not in json.dumps(user)


def test_keys_are_shown_once_and_revoked(wk):
    code, out, err = wk("keys", "create", "wall screen", "--role", "viewer")
    assert code == 0 and out.startswith("wk_") and "shown once" in err
    key_id = out.strip()[3:].split("_")[0]
    listed = wk("keys", "list")[1]
    assert key_id in listed and out.strip() not in listed
    assert wk("keys", "revoke", key_id)[0] == 0
    assert "revoked" in wk("keys", "list")[1]
    assert wk("keys", "revoke", "nope")[0] != 0


def test_audit_verify_prints_the_first_broken_link_and_export(wk):
    for name in ("a", "b", "c"):
        wk("keys", "create", name, "--role", "viewer")
    code, out, _ = wk("audit", "verify")
    assert code == 0 and "intact: 3 record(s)" in out
    store = open_store(wk.url)
    try:
        second = store.get_by_ids("audit", ["audit-000000000002"])[0]
        second["message"] = "nothing happened here"
        store.bulk_upsert("audit", [second])
    finally:
        store.close()
    code, out, _ = wk("audit", "verify")
    assert code == 1
    assert "BROKEN at record 2 (audit-000000000002)" in out and "edited" in out
    code, out, _ = wk("audit", "export")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["watchkeeper"]["audit"]["seq"] for r in lines] == [1, 2, 3, 4]
    assert lines[-1]["event"]["action"] == "audit.export"


def test_a_placeholder_secret_is_refused_at_start(wk, monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_AUTH__SECRET_KEY", "changeme")
    code, _, err = wk("serve", "--port", "1")
    assert code == 2 and "auth.secret_key" in err and "placeholder" in err
