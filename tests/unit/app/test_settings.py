"""Each subsystem owns its settings model; app/settings.py composes them, keys unchanged."""
from __future__ import annotations

import pytest

from app.settings import Settings, load_settings
from collectors.capture.settings import FlowTableSettings
from collectors.settings import CollectorSettings
from watchkeeper import config


def test_the_spine_holds_no_collector_setting():
    spine = set(config.Settings.model_fields)
    assert not spine & set(CollectorSettings.model_fields)
    assert "flow_table" not in spine


def test_composed_settings_have_every_subsystem_under_its_old_key():
    fields = set(Settings.model_fields)
    assert set(config.Settings.model_fields) | set(CollectorSettings.model_fields) <= fields
    assert Settings.model_fields["flow_table"].annotation is FlowTableSettings


def test_a_subsystem_validator_still_applies_after_composition(monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_COLLECTOR_ALLOWED_SENDERS", '["10.0.0.300/8"]')
    with pytest.raises(config.ConfigError, match="collector_allowed_senders"):
        load_settings()


def test_the_spine_validator_too(monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_INTERNAL_NETWORKS", '["10.0.0.300/8"]')
    with pytest.raises(config.ConfigError, match="internal_networks"):
        load_settings()


def test_collector_keys_from_a_file_and_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("syslog_port: 1514\nflow_table: {max_flows: 2000}\n")
    monkeypatch.setenv("WATCHKEEPER_NETFLOW_PORT", "2056")
    settings = load_settings(path)
    assert (settings.syslog_port, settings.netflow_port) == (1514, 2056)
    assert settings.flow_table.flow_config().max_flows == 2000
