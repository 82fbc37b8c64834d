"""The detection path compiled ahead of time by Cython, and the import hook that loads a
compiled module only while it matches its source.

Cython compiles these modules' Python unchanged (no type declarations, no `.pyx`): the
interpreter's dispatch loop is gone, the objects and semantics are the same, and the tests
run against the compiled code. The detection stages cost ~20 % less CPU per event for it
(bench/RESULTS.md, session 32), which is what the pipeline's capacity on two cores is made of.

A compiled module sits beside its source as `<name>.<tag>.wkc.so`. The tag is a hash of the
source, the interpreter's ABI and the build recipe, and the suffix is not one the import
system knows: a module is loaded compiled only through `CompiledFinder`, which hashes the
source at import and looks for the file with that tag. An edited source therefore never runs
stale compiled code; until `make install` builds it again (compiled_build.py), the source is
imported as usual. `WATCHKEEPER_COMPILED=0` turns the hook off (a profiler such as py-spy
sees no lines inside compiled modules).

This module names feature packages as strings only: the spine imports none of them.
"""
from __future__ import annotations

import hashlib
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader, ModuleSpec, PathFinder
from pathlib import Path

# Every module of these packages is compiled ...
PACKAGES = ("detectors", "detectors.kit")
# ... and these single modules, which the detection stages call per event.
MODULES = ("watchkeeper.timeutil", "watchkeeper.batches", "watchkeeper.schema")
# Run as scripts (`python -m`): runpy needs their code object, which a compiled module lacks.
EXCLUDED = ("detectors.dgamodel",)
SUFFIX = ".wkc.so"
RECIPE = "cython3 -O2 v1"       # bump when the build's flags change: every tag changes with it
_ABI = EXTENSION_SUFFIXES[0]     # e.g. ".cpython-311-x86_64-linux-gnu.so"


def wanted(fullname: str) -> bool:
    """Whether module `fullname` is one the build compiles."""
    if fullname in EXCLUDED or fullname in PACKAGES:
        return False
    return fullname in MODULES or fullname.rpartition(".")[0] in PACKAGES


def compiled_path(source: Path) -> Path:
    """Where the compiled form of `source`, as it reads now, sits."""
    digest = hashlib.blake2b(source.read_bytes(), digest_size=8)
    digest.update(f"\0{_ABI}\0{RECIPE}".encode())
    return source.with_name(f"{source.stem}.{digest.hexdigest()}{SUFFIX}")


class CompiledFinder:
    """A `sys.meta_path` finder (importlib.abc.MetaPathFinder's protocol; the base class is
    left out, its import costs 7 ms at every start): the compiled form of a wanted module
    when it matches the source; None (the import system goes on to the source) otherwise."""

    def __init__(self, is_wanted=wanted):
        self.is_wanted = is_wanted

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if not self.is_wanted(fullname):
            return None
        spec = PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        try:
            compiled = compiled_path(Path(spec.origin))
        except OSError:
            return None
        if not compiled.is_file():
            return None
        spec = ModuleSpec(fullname, ExtensionFileLoader(fullname, str(compiled)),
                          origin=str(compiled))
        spec.has_location = True                 # __file__ is the compiled file
        return spec


def enabled() -> bool:
    """False when WATCHKEEPER_COMPILED=0 asks for every module as Python."""
    return os.environ.get("WATCHKEEPER_COMPILED", "1") != "0"


def install() -> None:
    """Put the finder first on `sys.meta_path` (once), unless switched off (`enabled`)."""
    if not enabled():
        return
    if not any(isinstance(finder, CompiledFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, CompiledFinder())


def wanted_sources(top: Path) -> dict[str, Path]:
    """Module name -> source file of every wanted module under `top` (the directory that
    holds the packages)."""
    found = {}
    for package in PACKAGES:
        folder = top.joinpath(*package.split("."))
        for source in sorted(folder.glob("*.py")):
            if source.stem != "__init__":
                found[f"{package}.{source.stem}"] = source
    for name in MODULES:
        found[name] = top.joinpath(*name.split(".")).with_suffix(".py")
    return {name: path for name, path in found.items() if wanted(name)}


def status(top: Path | None = None) -> dict[str, bool]:
    """Module name -> whether its compiled form is built for its source as it reads now."""
    top = top or Path(__file__).resolve().parents[1]
    return {name: compiled_path(source).is_file()
            for name, source in wanted_sources(top).items()}


def loaded() -> tuple[list[str], list[str]]:
    """The wanted modules imported so far: (compiled, running as Python)."""
    compiled, python = [], []
    for name, module in list(sys.modules.items()):
        if wanted(name) and getattr(module, "__file__", None):
            (compiled if module.__file__.endswith(SUFFIX) else python).append(name)
    return sorted(compiled), sorted(python)


def report(log) -> None:
    """Say in `log` (and the metric) which form the detection path runs in: an operator whose
    build did not happen (no Cython, no compiler) runs ~20 % slower and should hear of it."""
    from watchkeeper import metrics
    compiled, python = loaded()
    metrics.COMPILED_MODULES.labels(form="compiled").set(len(compiled))
    metrics.COMPILED_MODULES.labels(form="python").set(len(python))
    if python and enabled():
        log.warning("detection path: %d of %d modules run as Python (%s): build them with "
                    "`make install` or `python -m watchkeeper.compiled_build`", len(python),
                    len(compiled) + len(python), ", ".join(python[:5]))
    else:
        log.info("detection path: %d modules compiled, %d as Python", len(compiled),
                 len(python))
