"""docker-compose.yml must agree with the CLI and settings (no Docker engine runs here)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from app.cli import build_parser
from app.roles import BY_NAME, ROLES
from app.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: svc for name, svc in SERVICES.items() if svc.get("image", "").startswith("watchkeeper")}


def test_topology_has_every_role():
    """One service per row of the role table (app/roles.py), and every service is a role."""
    commands = {svc["command"][0] for svc in OURS.values()}
    assert commands == {role.name for role in ROLES}
    assert {"kafka", "elasticsearch"} <= set(SERVICES)
    assert SERVICES["detect"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_command_parses(name):
    build_parser().parse_args(OURS[name]["command"])   # exits (SystemExit) on a bad command


@pytest.mark.parametrize("name", sorted(OURS))
def test_environment_names_are_settings_and_validate(name, monkeypatch):
    env = OURS[name]["environment"]
    fields = set(Settings.model_fields)
    for key, value in env.items():
        assert key.startswith("WATCHKEEPER_"), key
        assert key.removeprefix("WATCHKEEPER_").lower() in fields, key
        monkeypatch.setenv(key, str(value))
    settings = load_settings()
    _check_reachable(OURS[name], urlparse(settings.bus), "kafka",
                     SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    if BY_NAME[OURS[name]["command"][0]].needs_store:     # collectors need only the bus
        _check_reachable(OURS[name], urlparse(settings.store), "elasticsearch",
                         f"http://elasticsearch:{urlparse(settings.store).port}")


def _check_reachable(service: dict, url, target: str, advertised: str) -> None:
    """The address must be one the target advertises, reachable from the service's network."""
    assert f"{url.hostname}:{url.port}" in advertised, (url, advertised)
    if service.get("network_mode") == "host":
        published = {p.split(":")[-1].split("/")[0] for p in SERVICES[target].get("ports", [])}
        assert url.hostname == "127.0.0.1" and str(url.port) in published
    else:
        assert url.hostname == target


def test_api_port_matches_published_port():
    command = build_parser().parse_args(SERVICES["api"]["command"])
    published = SERVICES["api"]["ports"][0].rsplit(":", 1)[1]
    assert int(published) == command.port


def test_same_versions_as_local_services():
    script = (ROOT / "deploy/local/services").read_text()
    kafka_tag = SERVICES["kafka"]["image"].split(":")[1]
    es_tag = SERVICES["elasticsearch"]["image"].split(":")[1]
    assert f"KAFKA_VERSION={kafka_tag}" in script
    assert f"ES_VERSION={es_tag}" in script
