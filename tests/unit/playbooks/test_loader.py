"""Playbook files: every error with file and line, all at once; broken files never stop the
valid ones; hot reload; `watchkeeper playbooks check`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playbooks.cli import cmd_check
from playbooks.expr import Expression, ExpressionError
from playbooks.loader import SHIPPED, Library, load_folders

GOOD = """\
name: notify-scan
version: 1
trigger:
  alert:
    category: [scan]
steps:
  - id: hook
    action: notify_webhook
    with:
      url: http://127.0.0.1:9/hook
      message: "scan from {{ target }}"
"""

# Four mistakes on known lines: unknown category (5), a step without id (8), an unknown
# action (11), an `if` that is not a safe expression (13), a bad retry count (15).
BROKEN = """\
name: broken-one
version: 1
trigger:
  alert:
    category: [scann]
steps:
  - action: notify_webhook
    with: {url: "http://127.0.0.1:9/x"}
  - id: two
    action: launch_missiles
  - id: three
    action: notify_webhook
    if: "__import__('os').system('true')"
    with: {url: "http://127.0.0.1:9/x"}
    retries: {attempts: 0}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_library_loads_without_errors():
    result = load_folders([SHIPPED])
    assert result.errors == []
    assert {"block-external-scanner", "brute-force-success", "exfiltration-mlps3",
            "silent-collector"} <= set(result.playbooks)


def test_every_error_has_its_file_and_line_and_the_valid_file_still_loads(tmp_path):
    _write(tmp_path, "good.yaml", GOOD)
    bad = _write(tmp_path, "bad.yaml", BROKEN)
    result = load_folders([tmp_path])
    assert list(result.playbooks) == ["notify-scan"]
    found = {(e.line, e.message.split(":")[0]) for e in result.errors}
    assert all(e.file == str(bad) for e in result.errors)
    assert (5, "trigger.alert.category") in found
    assert (7, "steps.0.id") in found
    assert (10, "steps.1.action") in found
    assert (13, "steps.2.if") in found
    assert (15, "steps.2.retries.attempts") in found
    assert any("launch_missiles" in e.message and "notify_webhook" in e.message
               for e in result.errors)


def test_yaml_syntax_error_and_non_mapping_are_reported_with_lines(tmp_path):
    _write(tmp_path, "a.yaml", "name: x\nsteps: [\n  {id: a\n")
    _write(tmp_path, "b.yaml", "- just\n- a list\n")
    result = load_folders([tmp_path])
    assert {e.file.rsplit("/", 1)[1] for e in result.errors} == {"a.yaml", "b.yaml"}
    syntax = next(e for e in result.errors if e.file.endswith("a.yaml"))
    assert syntax.line >= 3 and "not valid YAML" in syntax.message


def test_bad_action_parameters_are_load_errors_with_lines(tmp_path):
    _write(tmp_path, "p.yaml", GOOD.replace("      message:", "      colour: red\n      message:")
           .replace("http://127.0.0.1:9/hook", "not a url"))
    result = load_folders([tmp_path])
    assert not result.playbooks
    lines = {e.line: e.message for e in result.errors}
    assert "url" in lines[10] and "colour" in lines[11]


def test_duplicate_names_and_step_ids_are_refused(tmp_path):
    _write(tmp_path, "a.yaml", GOOD)
    _write(tmp_path, "b.yaml", GOOD)
    _write(tmp_path, "c.yaml", GOOD.replace("notify-scan", "twice") +
           "  - id: hook\n    action: enrich\n    with: {address: 1.2.3.4}\n")
    result = load_folders([tmp_path])
    assert list(result.playbooks) == ["notify-scan"]
    assert any("already defined" in e.message for e in result.errors)
    assert any("used twice" in e.message for e in result.errors)


def test_hot_reload_picks_up_a_new_and_a_fixed_file(tmp_path):
    library = Library([tmp_path])
    assert library.playbooks == {}
    path = _write(tmp_path, "p.yaml", BROKEN)
    assert library.reload_if_changed() and library.playbooks == {}
    path.write_text(GOOD)
    os.utime(path, ns=(1, 10**18))              # a different mtime even on a coarse clock
    assert library.reload_if_changed()
    assert list(library.playbooks) == ["notify-scan"]
    assert not library.reload_if_changed()       # nothing changed: nothing reloaded


@pytest.mark.parametrize("source", [
    "__import__('os')", "alert.__class__", "(lambda: 1)()", "[x for x in y]", "a if b else c",
    "open('/etc/passwd')", "x + 1",
])
def test_unsafe_expressions_are_refused(source):
    with pytest.raises(ExpressionError):
        Expression(source)


def test_expressions_evaluate_over_fields():
    alert = {"source": {"ip": "203.0.113.9"}, "event": {"severity": 3}, "tags": ["a"]}
    assert Expression("event.severity >= 3 and cidr(source.ip, '203.0.113.0/24')").test(alert)
    assert not Expression("missing.field > 2").test(alert)      # None > 2: false, no crash
    assert Expression("'a' in tags and not 'b' in tags").test(alert)
    assert Expression("1 < event.severity < 4").test(alert)
    assert Expression("coalesce(missing, '', source.ip, 'x')").evaluate(alert) == "203.0.113.9"
    assert Expression("coalesce(missing, none)").evaluate(alert) is None


def test_check_command_prints_every_error_and_fails(tmp_path, capsys):
    _write(tmp_path, "good.yaml", GOOD)
    _write(tmp_path, "bad.yaml", BROKEN)
    assert cmd_check([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml:5:" in err and "bad.yaml:10:" in err and "bad.yaml:15:" in err
    assert cmd_check([str(SHIPPED)]) == 0


def test_watchkeeper_playbooks_check_cli(tmp_path):
    _write(tmp_path, "bad.yaml", BROKEN)
    exe = Path(sys.executable).parent / "watchkeeper"
    done = subprocess.run([str(exe), "playbooks", "check", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "bad.yaml:13:" in done.stderr and "0 playbooks valid" in done.stdout


def test_a_function_given_the_wrong_kind_of_value_yields_no_value():
    assert not Expression("len(event.severity) > 1").test({"event": {"severity": 3}})
    assert not Expression("cidr(source.ip, 'nonsense')").test({"source": {"ip": "1.2.3.4"}})
    assert not Expression("'a' in event.severity").test({"event": {"severity": 3}})


def test_a_bad_playbooks_setting_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "wk.yaml"
    config.write_text('playbooks:\n  block:\n    command: ["nft -f - ; rm -rf /"]\n')
    exe = Path(sys.executable).parent / "watchkeeper"
    done = subprocess.run([str(exe), "playbooks", "--config", str(config), "--store",
                           f"sqlite:///{tmp_path}/wk.db"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "watchkeeper: config: playbooks.block.command: Value error, command[0] is a program "
        "name, not a shell string")
    assert "Traceback" not in done.stderr
