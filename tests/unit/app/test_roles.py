"""The role table (app/roles.py) is what the CLI, `run` and docker-compose are built from."""
from __future__ import annotations

import dataclasses

import pytest

from app import commands, roles
from app.cli import build_parser, dispatch


def test_run_starts_workers_before_collectors():
    # `run` starts roles in table order: every consumer group must exist before the first
    # event is published, or the embedded bus would drop messages for a group not yet there.
    kinds = [role.kind for role in roles.ROLES if role.start is not None]
    assert "worker" in kinds and "collector" in kinds
    assert kinds == sorted(kinds, key=lambda kind: kind != "worker")


def test_only_collectors_run_without_a_store():
    assert {r.name for r in roles.ROLES if not r.needs_store} == {
        r.name for r in roles.ROLES if r.kind == "collector"}


@pytest.mark.parametrize("role", roles.ROLES, ids=lambda r: r.name)
def test_every_role_is_a_subcommand_dispatched_to_its_builder(role, monkeypatch):
    seen = []
    fake = dataclasses.replace(role, main=lambda args: seen.append(args.command) or 0)
    monkeypatch.setattr(roles, "ROLES", tuple(fake if r is role else r for r in roles.ROLES))
    argv = [role.name, *{"capture": ["--interface", "eth1"]}.get(role.name, [])]
    assert dispatch(build_parser().parse_args(argv)) == 0
    assert seen == [role.name]


def test_run_takes_the_options_its_roles_contribute():
    args = build_parser().parse_args(["run", "--syslog-port", "1514", "--netflow-port", "2056",
                                      "--interface", "lo", "--host", "0.0.0.0", "--port", "9",
                                      "--demo"])
    assert (args.syslog_port, args.netflow_port, args.interface, args.host, args.port,
            args.demo) == (1514, 2056, "lo", "0.0.0.0", 9, True)


def test_role_and_tool_names_are_unique():
    names = [e.name for e in (*roles.ROLES, *commands.TOOLS)]
    assert len(names) == len(set(names))
