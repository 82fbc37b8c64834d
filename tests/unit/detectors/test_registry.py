"""Every registered detector honours the contract (DESIGN.md §6), like scikit-learn's
check_estimator: one suite, run against each."""
from __future__ import annotations

import json

import pytest

from detectors import registry
from detectors.base import Detector
from watchkeeper.schema import CATEGORIES

DETECTORS = sorted(registry.available().items())


@pytest.mark.parametrize("name, cls", DETECTORS)
def test_contract(name, cls):
    assert issubclass(cls, Detector) and cls.name == name
    assert cls.category in CATEGORIES
    assert cls.datasets and isinstance(cls.version, str)
    det = cls()
    assert json.loads(json.dumps(det.snapshot())) == det.snapshot()
    det.restore(det.snapshot())
    assert det.on_timer(0.0) == []
    for field, info in cls.Config.model_fields.items():
        assert info.description, f"{name}.{field} needs a documented meaning"


def test_build_validates_parameters_and_names_the_key():
    with pytest.raises(ValueError, match=r"detectors\.scan\.min_targets"):
        registry.build({"scan": {"min_targets": 0}})
    with pytest.raises(ValueError, match="unknown"):
        registry.build({"nosuch": {}})
    built = registry.build({"scan": {"min_targets": 5}}, ["scan"])
    assert [d.name for d in built] == ["scan"] and built[0].config.min_targets == 5
    assert {d.name for d in registry.build()} == set(registry.available())
