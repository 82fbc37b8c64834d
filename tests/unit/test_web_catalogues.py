"""The web pages' message catalogues: zh-CN and en carry the same keys, and every label key the
pages' sources name (`t('…')`, or a prefix completed at run time) exists in both."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from api.schemas.posture import PostureWarningPublic
from playbooks.actions import REGISTRY
from reports.builder import REPORT_TYPES

WEB = Path(__file__).resolve().parents[2] / "web"
SOURCES = [*WEB.glob("src/**/*.js"), *WEB.glob("*/index.html")]
KEY = re.compile(r"""\bt\(\s*['"`]([A-Za-z0-9_.]+)['"`]""")
# Prefixes completed at run time, with every value the pages may complete them with.
DYNAMIC = {
    "cat.": ["scan", "brute_force", "dos", "beaconing", "dns_tunneling", "dga", "exfiltration",
             "lateral_movement", "ioc_match", "policy_violation", "anomaly", "ids"],
    "status.": ["new", "acknowledged", "investigating", "closed"],
    "verdict.": ["true_positive", "false_positive", "benign_positive", "duplicate", "other"],
    "level.": ["I", "II", "III", "IV"],
    "colour.": ["red", "orange", "yellow", "blue"],
    "role.": ["viewer", "analyst", "responder", "system_admin", "security_admin", "audit_admin"],
    "view.": ["overall", "attacks", "assets", "incidents", "collectors"],
    "severity.": ["low", "medium", "high", "critical"],
    "istatus.": ["new", "acknowledged", "investigating", "contained", "closed"],
}
DYNAMIC["gbt."] = DYNAMIC["cat."]
DYNAMIC["reports.kind."] = list(REPORT_TYPES)
# The approvals page names every playbook action; the screen every posture warning kind.
DYNAMIC["pbaction."] = sorted(REGISTRY)
DYNAMIC["healthWarning."] = list(get_args(PostureWarningPublic.model_fields["kind"].annotation))


def catalogue(name: str) -> dict[str, str]:
    return json.loads((WEB / "src" / "i18n" / f"{name}.json").read_text(encoding="utf-8"))


def used_keys() -> set[str]:
    keys = set()
    for path in SOURCES:
        for key in KEY.findall(path.read_text(encoding="utf-8")):
            keys.update(f"{key}{v}" for v in DYNAMIC[key]) if key in DYNAMIC else keys.add(key)
    return keys


def test_both_languages_have_the_same_keys_and_no_empty_label():
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert set(zh) == set(en)
    assert not [k for k, v in {**zh, **en}.items() if not v.strip()]


def test_every_key_the_pages_use_is_in_the_catalogues():
    keys = used_keys()
    assert len(keys) > 100                      # the scan found the pages' labels
    assert sorted(keys - set(catalogue("zh-CN"))) == []


def test_the_chinese_catalogue_is_chinese():
    zh = catalogue("zh-CN")
    han = re.compile(r"[\u4e00-\u9fff]")
    assert han.search(zh["screen.title"]) and han.search(zh["status.new"])
    assert zh["level.I"] == "特别重大（Ⅰ级）" and zh["verdict.false_positive"] == "误报"
