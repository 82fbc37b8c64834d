"""The layer contract (pyproject.toml [tool.importlinter], DESIGN.md §2): feature packages
depend only on the spine `watchkeeper`, the spine imports none of them, and they do not import
each other. import-linter reads every import, those inside functions too."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_PRODUCT = {"tests", "bench", "deploy", "web", "docs"}
with open(ROOT / "pyproject.toml", "rb") as _f:
    PACKAGES = tuple(tomllib.load(_f)["tool"]["importlinter"]["root_packages"])
LINT = str(Path(sys.executable).parent / "lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}    # the tree in `cwd`, not the installed one
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_layer_contract_is_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def copy_tree(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.stamp"))


def test_a_new_forbidden_import_breaks_it(tmp_path):
    copy_tree(tmp_path)
    assert lint(tmp_path).returncode == 0                  # the copy is as good as the tree
    schema = tmp_path / "watchkeeper" / "schema.py"
    schema.write_text(schema.read_text() + "\nimport api  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "watchkeeper.schema -> api" in result.stdout, result.stdout


def test_features_may_not_import_each_other(tmp_path):
    copy_tree(tmp_path)
    dos = tmp_path / "detectors" / "dos.py"
    dos.write_text(dos.read_text() + "\nfrom collectors import capture  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "detectors.dos -> collectors.capture" in result.stdout, result.stdout


def test_nothing_imports_the_composition_root(tmp_path):
    copy_tree(tmp_path)
    meter = tmp_path / "collectors" / "capture" / "meter.py"
    meter.write_text(meter.read_text() + "\nfrom app import roles  # noqa: E402,F401\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "collectors.capture.meter -> app.roles" in result.stdout, result.stdout


def test_the_contract_has_no_exceptions():
    """Issue 16: every spine -> feature import is gone, so none may be ignored."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        linter = tomllib.load(f)["tool"]["importlinter"]
    # Every top-level package of the product is under the contract (a new one must be added).
    top_level = {p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_PRODUCT
    assert top_level <= set(linter["root_packages"]), top_level - set(linter["root_packages"])
    for contract in linter["contracts"]:
        assert not contract.get("ignore_imports"), contract["name"]
