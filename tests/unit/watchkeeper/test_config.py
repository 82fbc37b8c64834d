from __future__ import annotations

import pytest

from app.settings import load_settings
from watchkeeper.config import ConfigError


def test_defaults_are_the_embedded_single_machine_setup():
    settings = load_settings()
    assert settings.bus == "memory://" and settings.store.startswith("sqlite:///")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert (settings.syslog_port, settings.netflow_port) == (5514, 2055)
    assert settings.retention_months == 6


def test_precedence_flags_over_env_over_file(tmp_path, monkeypatch):
    config = tmp_path / "wk.yaml"
    config.write_text("port: 8100\nsite: county-a\nbus: kafka://file:9092\n")
    monkeypatch.setenv("WATCHKEEPER_BUS", "kafka://env:9092")
    settings = load_settings(config, bus=None, port=9000)
    assert (settings.port, settings.site, settings.bus) == (9000, "county-a", "kafka://env:9092")


def test_nested_env_override(monkeypatch):
    monkeypatch.setenv("WATCHKEEPER_INTERNAL_NETWORKS", '["10.20.0.0/16"]')
    assert load_settings().internal_networks == ["10.20.0.0/16"]


@pytest.mark.parametrize("text, named", [
    ("port: 0\n", "port"),
    ("netflow_port: 70000\n", "netflow_port"),
    ("bus: redis://x\n", "bus"),
    ("store: mysql://x\n", "store"),
    ("internal_networks: [10.0.0.0/33]\n", "internal_networks"),
    ("retention_months: 0\n", "retention_months"),
    ("namespace: 'Bad Name'\n", "namespace"),
    ("typo_key: 1\n", "typo_key"),
    ("- just\n- a list\n", "mapping"),
    ("port: [unclosed\n", "YAML"),
    ("flow_table: {udp_inactivity_timeout: 0}\n", "udp_inactivity_timeout"),
    ("flow_table: {idle: 5}\n", "idle"),
])
def test_bad_config_names_the_key(tmp_path, text, named):
    config = tmp_path / "wk.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_settings(config)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.yaml")


def test_flow_table_timeouts_are_configurable(tmp_path, monkeypatch):
    config = tmp_path / "wk.yaml"
    config.write_text("flow_table: {udp_inactivity_timeout: 30, early_report: 0}\n")
    monkeypatch.setenv("WATCHKEEPER_FLOW_TABLE__ACTIVE_TIMEOUT", "120")
    flow = load_settings(config).flow_table.flow_config()
    assert (flow.udp_inactivity_timeout, flow.early_report, flow.active_timeout) == (30, 0, 120)
    assert flow.tcp_inactivity_timeout == 300           # Zeek's default where unset
