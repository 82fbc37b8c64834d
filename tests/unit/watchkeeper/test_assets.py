from __future__ import annotations

from pathlib import Path

import pytest

from alerting.context import AlertContext, AllowRule, adjusted_risk
from watchkeeper.assets import load_inventory
from watchkeeper.documents import AlertSpec, alert_document

EXAMPLE = Path(__file__).resolve().parents[3] / "deploy/examples/inventory.yaml"


def _alert(src="10.10.1.30", dst="10.10.2.20", detector="scan", severity=2):
    spec = AlertSpec(detector, "1", "scan", "wk.scan", "Port scan", severity, "m", src,
                     1.7e9, 1.7e9 + 5, source_ip=src, destination_ip=dst,
                     subscores={"fanout": 0.6})
    return alert_document(spec, created=1.7e9 + 6)


def test_longest_prefix_and_site_path():
    inventory = load_inventory(EXAMPLE)
    portal = inventory.lookup("10.10.2.20")
    assert portal.asset.name == "政务外网门户" and portal.asset.criticality == 5
    assert portal.site_path == ["region", "dc-region"]
    assert inventory.lookup("10.10.1.7").site_path == ["region", "city-a", "county-a1"]
    assert inventory.lookup("10.99.0.1").asset.site == "region"
    assert inventory.lookup("8.8.8.8") is None


@pytest.mark.parametrize("text, named", [
    ("assets: [{cidr: 10.0.0.0/33, site: x}]\nsites: [{id: x, name: X}]", "assets[0].cidr"),
    ("assets: [{cidr: 10.0.0.0/8, site: nowhere}]", "unknown site"),
    ("sites: [{id: a, name: A, parent: ghost}]", "unknown site 'ghost'"),
    ("assets: [{cidr: 10.0.0.0/8, site: a, mlps_level: 7}]\nsites: [{id: a, name: A}]",
     "mlps_level"),
])
def test_bad_inventory_names_every_error(tmp_path, text, named):
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_inventory(path)


def test_context_adds_assets_and_moves_risk():
    context = AlertContext(load_inventory(EXAMPLE))
    plain = _alert()["event"]["risk_score"]
    enriched = context.apply(_alert())
    assert enriched["labels"]["site"] == "dc-region"
    assert enriched["watchkeeper"]["asset"]["destination"]["owner"] == "li.wei"
    assert enriched["event"]["risk_score"] > plain          # criticality 5, MLPS 3
    lab = context.apply(_alert(dst="10.10.1.40"))            # criticality 2 office LAN, MLPS 3
    assert lab["event"]["risk_score"] < enriched["event"]["risk_score"]
    assert adjusted_risk(50.0, None, None) == 50.0


def test_allowlist_closes_as_benign_with_the_reason():
    rules = [AllowRule(cidr="10.10.1.30/32", detector="scan", reason="vulnerability scanner")]
    context = AlertContext(allowlist=rules)
    alert = context.apply(_alert())
    assert alert["watchkeeper"]["alert"]["status"] == "closed"
    assert alert["watchkeeper"]["alert"]["verdict"] == "benign_positive"
    assert alert["watchkeeper"]["alert"]["suppressed_by"] == "allowlist"
    assert alert["watchkeeper"]["alert"]["suppressed_reason"] == "vulnerability scanner"
    assert "incident_id" not in alert["watchkeeper"]["alert"]
    other = context.apply(_alert(src="10.10.1.31"))
    assert other["watchkeeper"]["alert"]["status"] == "new"
    with pytest.raises(ValueError):
        AllowRule(cidr="10.1.1.1/40", reason="bad")
    assert not AllowRule(reason="matches nothing without criteria").matches(_alert())


def test_sites_carry_an_organisation_type_for_the_reporting_clock(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("sites:\n  - {id: region, name: R, org_type: state_organ}\n"
                    "  - {id: city, name: C, parent: region}\n", encoding="utf-8")
    sites = load_inventory(path).sites
    assert (sites["region"].org_type, sites["city"].org_type) == ("state_organ", "other")
    from app.admin import inventory_org_types
    from watchkeeper.config import Settings
    assert inventory_org_types(Settings(inventory_file=str(path))) == {
        "region": "state_organ", "city": "other"}
    assert inventory_org_types(Settings()) == {}
    path.write_text("sites:\n  - {id: region, name: R, org_type: ministry}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="org_type"):
        load_inventory(path)
