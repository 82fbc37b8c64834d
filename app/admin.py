"""`watchkeeper users|keys|audit …` and the demo accounts of `run --demo`.

The CLI is how the first system administrator, and the three administrators (三员), come to
exist: someone with a shell on the host, recorded in the audit trail as `cli:<login>`.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from app import options
from app.settings import Settings
from watchkeeper import codec
from watchkeeper.accounts import Accounts
from watchkeeper.assets import load_inventory
from watchkeeper.identity import ROLES, ROOT, new_secret
from watchkeeper.store import Store, open_store
from watchkeeper.store import audit as chain


def inventory_sites(settings: Settings, store: Store | None = None
                    ) -> dict[str, str | None] | None:
    """The inventory's site tree (id -> parent) tenancy follows; None without an inventory.
    With a store: the store's sites (seeded once from the inventory file)."""
    if store is not None:
        from watchkeeper.store.inventory import seed_from_file, stored_sites
        seed_from_file(store, settings.inventory_file)
        sites = stored_sites(store)
        if sites:
            return {s.id: s.parent for s in sites}
    if not settings.inventory_file:
        return None
    return {s.id: s.parent for s in load_inventory(settings.inventory_file).sites.values()}


def inventory_org_types(settings: Settings) -> dict[str, str]:
    """Site id -> organisation type (cii | state_organ | other) for the reporting clock."""
    if not settings.inventory_file:
        return {}
    return {s.id: s.org_type for s in load_inventory(settings.inventory_file).sites.values()}


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def users_options(users: argparse.ArgumentParser) -> None:
    options.backends(users)
    users.add_argument("action", choices=["add", "list", "disable", "enable", "password"])
    users.add_argument("name", nargs="?")
    users.add_argument("--role", choices=ROLES)
    users.add_argument("--site", default=ROOT, help="inventory site id (default / = root)")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from stdin instead of prompting")


def keys_options(keys: argparse.ArgumentParser) -> None:
    options.backends(keys)
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("name", nargs="?", help="create: what uses it; revoke: the key id")
    keys.add_argument("--role", choices=ROLES)
    keys.add_argument("--site", default=ROOT)


def audit_options(audit: argparse.ArgumentParser) -> None:
    options.backends(audit)
    audit.add_argument("action", choices=["verify", "export"])


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _need(args: argparse.Namespace, *names: str) -> None:
    missing = [n for n in names if getattr(args, n) is None]
    if missing:
        raise ValueError(f"{args.command} {args.action}: give " + ", ".join(
            n if n == "name" else f"--{n}" for n in missing))


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        if args.action == "list":
            for user in accounts.ids.list_users():
                state = "disabled" if user["disabled"] else "active"
                print(f"{user['name']}\t{user['role']}\t{user['site']}\t{state}")
            return 0
        _need(args, "name")
        if args.action == "add":
            _need(args, "role")
            accounts.add_user(args.name, args.role, args.site, _password(args), cli_actor())
        elif args.action == "password":
            accounts.set_password(args.name, _password(args), cli_actor())
        else:
            accounts.set_disabled(args.name, args.action == "disable", cli_actor())
        print(f"user {args.name}: {args.action} done", file=sys.stderr)
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        if args.action == "list":
            for key in accounts.list_keys():
                state = "revoked" if key["revoked"] else "active"
                print(f"{key['id']}\t{key['name']}\t{key['role']}\t{key['site']}\t{state}")
            return 0
        _need(args, "name")
        if args.action == "create":
            _need(args, "role")
            key, whole = accounts.create_key(args.name, args.role, args.site, cli_actor())
            print(f"key {key['id']} ({args.role} at {args.site}); shown once, store it now:",
                  file=sys.stderr)
            print(whole)
        else:
            accounts.revoke_key(args.name, cli_actor())
            print(f"key {args.name} revoked", file=sys.stderr)
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings.store)
    try:
        if args.action == "verify":
            verdict = chain.verify(store)
            if verdict.ok:
                print(f"audit chain intact: {verdict.checked} record(s)")
                return 0
            print(f"audit chain BROKEN at record {verdict.broken_seq} ({verdict.broken_id}): "
                  f"{verdict.reason}; {verdict.checked} record(s) before it are intact")
            return 1
        store.append_audit(chain.audit_record("audit.export", cli_actor()))
        out = sys.stdout.buffer
        for record in chain.iter_audit(store):
            out.write(codec.encode(record) + b"\n")
        out.flush()
    finally:
        store.close()
    return 0


class _accounts:
    """Context manager: Accounts over a freshly opened store, closed on exit."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def __enter__(self) -> Accounts:
        self.store = open_store(self.settings.store)
        secret = self.settings.auth.secret_key or new_secret(48)   # the CLI signs no tokens
        return Accounts(self.store, self.settings.auth, secret,
                        inventory_sites(self.settings, self.store))

    def __exit__(self, *exc) -> None:
        self.store.close()


def create_demo_users(store: Store, settings: Settings) -> list[tuple[str, str, str]]:
    """One user per role at the root with a random password, printed once on the terminal;
    an existing demo user gets a new password."""
    accounts = Accounts(store, settings.auth, new_secret(48), None)
    made = []
    for role in ROLES:
        name, password = f"demo-{role.replace('_', '-')}", new_secret(12)
        if accounts.ids.get_user(name):
            accounts.set_password(name, password, "demo")
            accounts.set_disabled(name, False, "demo")
        else:
            accounts.add_user(name, role, ROOT, password, "demo")
        made.append((name, role, password))
    width = max(len(n) for n, _, _ in made)
    lines = [f"  {n:<{width}}  {r:<15} {p}" for n, r, p in made]
    print("Demo users (passwords shown once; log in at POST /api/v1/auth/token):\n"
          + "\n".join(lines), file=sys.stderr, flush=True)
    return made
