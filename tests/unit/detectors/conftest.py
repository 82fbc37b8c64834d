"""Every alert a detector raises in these tests says what it says in zh-CN too.

zh-CN is the default language of everything people read: the console and the reports show
`watchkeeper.alert.message_zh` / `rule_name_zh` (docs/decisions.md, "Alerts carry their
zh-CN wording"). Rather than one test per message, every AlertSpec made by code under
`detectors/` during this directory's tests is checked when the test ends.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from watchkeeper.documents import AlertSpec

DETECTORS = str(Path(__file__).resolve().parents[3] / "detectors")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def alerts_speak_chinese(monkeypatch):
    made: list[tuple[str, AlertSpec]] = []
    original = AlertSpec.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith(DETECTORS):
            made.append((caller, self))

    monkeypatch.setattr(AlertSpec, "__init__", init)
    yield made
    for where, spec in made:
        assert spec.message_zh and CJK.search(spec.message_zh), \
            f"{Path(where).name}: alert {spec.rule_id} has no zh-CN message: {spec.message!r}"
        if not spec.rule_id.startswith("sigma") and spec.detector != "sigma":
            assert spec.rule_name_zh and CJK.search(spec.rule_name_zh), \
                f"{Path(where).name}: rule {spec.rule_id} has no zh-CN name"
