"""Build the compiled forms of the detection path's modules (compiled.py says which and why).

    python -m watchkeeper.compiled_build [--jobs N]      # make install; builds what is stale

Each module: Cython translates its source to C in a scratch directory, the C compiler Python
was built with makes the extension module, and it is moved into place under the name
`compiled.compiled_path` gives, beside the source; older builds of that module are removed.
A module already built for its source is skipped, so a second run costs the hashing only.
Without Cython the modules stay uncompiled (same behaviour, ~20 % more CPU per event) and
this says so; a module Cython or the compiler refuses is an error.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from watchkeeper.compiled import SUFFIX, compiled_path, status, wanted_sources

TOP = Path(__file__).resolve().parents[1]


def _compiler() -> list[str]:
    return shlex.split(sysconfig.get_config_var("CC") or "cc")


def build_module(name: str, source: Path) -> Path:
    """Compile module `name` from `source`; the path of the built file."""
    target = compiled_path(source)
    with tempfile.TemporaryDirectory(prefix="wk-compile-") as scratch:
        c_file = Path(scratch) / f"{source.stem}.c"
        built = Path(scratch) / f"{source.stem}{SUFFIX}"
        _run([sys.executable, "-m", "cython", "-3", "--module-name", name, str(source),
              "-o", str(c_file)])
        _run([*_compiler(), "-O2", "-fPIC", "-shared", "-w",
              f"-I{sysconfig.get_paths()['include']}", str(c_file), "-o", str(built)])
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")   # builds may race
        partial.write_bytes(built.read_bytes())  # scratch may be another file system
        partial.replace(target)                  # a reader never sees half a file
    for old in source.parent.glob(f"{source.stem}.*{SUFFIX}"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _run(argv: list[str]) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as missing:
        raise RuntimeError(f"{argv[0]} is not installed (a C compiler is needed to build)") \
            from missing
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} {argv[-3]} failed:\n{done.stderr.strip()[-2000:]}")


def stale(top: Path = TOP) -> dict[str, Path]:
    """The wanted modules whose compiled form is missing for their source as it reads now."""
    built = status(top)
    return {name: source for name, source in wanted_sources(top).items() if not built[name]}


def has_cython() -> bool:
    try:
        import Cython  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchkeeper.compiled_build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    todo = stale()
    if not todo:
        print("compiled modules: all up to date")
        return 0
    if not has_cython():
        print(f"compiled modules: Cython is not installed; {len(todo)} modules run uncompiled "
              "(pip install '.[compiled]')", file=sys.stderr)
        return 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        built = list(pool.map(lambda item: build_module(*item), todo.items()))
    print(f"compiled modules: built {len(built)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
