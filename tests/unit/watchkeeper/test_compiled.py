"""The detection path compiled by Cython (watchkeeper/compiled.py): a compiled module loads only
while it matches its source, and the compiled detectors raise exactly the alerts their source
does. The rest of the suite runs against the compiled modules `make install` builds."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from watchkeeper import compiled, compiled_build
from watchkeeper.compiled import SUFFIX, CompiledFinder

ROOT = Path(__file__).resolve().parents[3]
ALERTS = """
import json
import detectors.exfil, detectors.kit.keyed, watchkeeper.timeutil
from tests.unit.detectors.test_contract import DETECTORS, _fingerprint, straight
modules = (detectors.exfil, detectors.kit.keyed, watchkeeper.timeutil)
print(json.dumps({"files": [m.__file__ for m in modules],
                  "alerts": {name: _fingerprint(straight(name)[0]) for name in DETECTORS}}))
"""


def _fresh_import(name: str):
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_a_module_loads_compiled_only_while_it_matches_its_source(tmp_path, monkeypatch):
    package = tmp_path / "wkc_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "mod.py"
    source.write_text("def answer():\n    return 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path",
                        [CompiledFinder(lambda name: name == "wkc_probe.mod"), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "wkc_probe", raising=False)

    built = compiled_build.build_module("wkc_probe.mod", source)
    assert built.name.endswith(SUFFIX) and built.parent == package
    module = _fresh_import("wkc_probe.mod")
    assert module.__file__ == str(built)
    assert module.answer() == 41
    assert type(module.answer).__name__ == "cython_function_or_method"

    source.write_text("def answer():\n    return 4242\n")       # edited, not rebuilt
    module = _fresh_import("wkc_probe.mod")
    assert module.__file__ == str(source)
    assert module.answer() == 4242
    assert built.exists()                  # still there, never loaded for the new source

    rebuilt = compiled_build.build_module("wkc_probe.mod", source)
    assert rebuilt != built and not built.exists()          # the older build is removed
    module = _fresh_import("wkc_probe.mod")
    assert module.__file__ == str(rebuilt)
    assert module.answer() == 4242


def test_modules_outside_the_list_and_scripts_stay_source():
    assert compiled.wanted("detectors.exfil")
    assert compiled.wanted("detectors.kit.keyed")
    assert compiled.wanted("watchkeeper.timeutil")
    assert not compiled.wanted("detectors.dgamodel")      # run with `python -m`
    assert not compiled.wanted("watchkeeper.config")
    assert not compiled.wanted("api.app")
    import detectors.dgamodel
    assert detectors.dgamodel.__file__.endswith(".py")


def _alerts(compiled_on: bool) -> dict:
    env = {**os.environ, "WATCHKEEPER_COMPILED": "1" if compiled_on else "0"}
    done = subprocess.run([sys.executable, "-c", ALERTS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_compiled_detectors_raise_what_their_source_raises():
    assert compiled_build.main([]) == 0          # builds what an edit made stale, if anything
    assert all(compiled.status().values()), compiled.status()
    with_compiled, with_source = _alerts(True), _alerts(False)
    assert all(path.endswith(SUFFIX) for path in with_compiled["files"]), with_compiled["files"]
    assert all(path.endswith(".py") for path in with_source["files"]), with_source["files"]
    raised = sum(len(alerts) for alerts in with_source["alerts"].values())
    assert raised > 10, with_source["alerts"]          # the stream does raise alerts
    assert with_compiled["alerts"] == with_source["alerts"]


def test_the_form_the_detection_path_runs_in_is_reported(caplog, monkeypatch):
    import logging

    import detectors.exfil  # noqa: F401
    from watchkeeper import metrics
    log = logging.getLogger("test-compiled")
    monkeypatch.setenv("WATCHKEEPER_COMPILED", "1")     # not switched off: Python is news
    with caplog.at_level(logging.INFO, logger="test-compiled"):
        compiled.report(log)
    done, python = compiled.loaded()
    assert "detectors.exfil" in done + python and "detectors.kit" not in done + python
    gauge = metrics.COMPILED_MODULES.labels(form="python")._value.get()
    assert gauge == len(python)
    assert metrics.COMPILED_MODULES.labels(form="compiled")._value.get() == len(done)
    if python:
        assert "run as Python" in caplog.text and python[0] in caplog.text
    else:
        assert f"{len(done)} modules compiled, 0 as Python" in caplog.text
