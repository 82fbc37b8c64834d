"""The posture formula's pieces (docs/api-posture.md), table-driven, and the inventory file
formats: what the screen shows must follow the documented numbers exactly."""
from __future__ import annotations

import pytest

from watchkeeper import posture
from watchkeeper.assets import InventoryError, Site
from watchkeeper.inventory_files import from_csv, from_yaml, to_csv, to_yaml
from watchkeeper.posture import SiteNode


@pytest.mark.parametrize("score, colour", [(0, "blue"), (19.99, "blue"), (20, "yellow"),
                                           (79.9, "yellow"), (80, "orange"), (199, "orange"),
                                           (200, "red"), (1e9, "red")])
def test_levels(score, colour):
    assert posture.level_of(score) == colour


@pytest.mark.parametrize("stake, factor", [
    ((5, 4, None, None), 5 / 3 * 4 / 2),        # the destination asset
    ((None, None, 1, 1), 1 / 3 * 1 / 2),        # no destination asset: the source's
    ((None, None, None, None), 1.0),            # unknown: criticality 3, MLPS 2
    ((9, 0, None, None), 1.0),                  # out of range: the defaults
    ((4, None, 1, 1), 4 / 3),                   # a known destination wins, MLPS defaulted
])
def test_stake_factor(stake, factor):
    assert posture.stake_factor(*stake) == pytest.approx(factor)


def test_decay_halves_every_day_and_never_grows():
    assert posture.decay(0) == 1 and posture.decay(-50) == 1
    assert posture.decay(86400) == pytest.approx(0.5)
    assert posture.decay(7 * 86400) < 0.01


def test_roll_up_follows_the_tree_and_the_scope():
    tree = {"r": SiteNode("r", "区域", None), "c": SiteNode("c", "市", "r"),
            "k1": SiteNode("k1", "县1", "c"), "k2": SiteNode("k2", "县2", "c")}
    scores = {"k1": 30.0, "k2": 60.0, "c": 5.0, None: 1000.0}
    counts = {"k1": 1, "k2": 2, "c": 1, None: 9}
    entries = {e.site: e for e in posture.site_postures(tree, None, scores, counts)}
    assert entries["c"].score == 95.0 and entries["r"].score == 95.0
    assert entries["c"].level == "orange" and entries["k1"].level == "yellow"
    assert [e.tier for e in entries.values()] == ["region", "city", "county", "county"]
    scoped = posture.site_postures(tree, ["k2"], scores, counts)
    assert [(e.site, e.score, e.parent) for e in scoped] == [("k2", 60.0, "c")]


def test_csv_and_yaml_round_trip():
    from watchkeeper.assets import Asset
    sites = [Site(id="r", name="区域, \"中心\""), Site(id="c", name="市", parent="r",
                                                     org_type="cii")]
    assets = [Asset(cidr="10.0.0.0/8", site="c", owner="wang", mlps_level=4)]
    assert from_csv(to_csv(sites, assets)) == (sites, assets)
    assert from_yaml(to_yaml(sites, assets)) == (sites, assets)


@pytest.mark.parametrize("text", ["kind\nspaceship\n", "no,kind,column\n1,2,3\n",
                                  "kind,id,name\nsite,x,y,extra\n",
                                  "kind,cidr,site,mlps_level\nasset,10.0.0.0/8,r,seven\n"])
def test_bad_csv_names_the_problem(text):
    with pytest.raises(InventoryError) as refused:
        from_csv(text)
    assert refused.value.errors


def test_too_many_groups_degrades_to_coarser_time_not_an_error(tmp_path, monkeypatch):
    from watchkeeper.documents import AlertSpec, alert_document
    from watchkeeper.store import open_store
    now = 1_767_225_600.0
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    docs = []
    for n in range(12):                                   # 12 different hours of one day
        at = now - 3600 * n - 60
        spec = AlertSpec(detector="d", detector_version="1", category="scan", rule_id="r",
                         rule_name="r", severity=2, message="m", entity=f"e{n}",
                         first_seen=at, last_seen=at, source_ip="10.0.0.1")
        docs.append({**alert_document(spec, created=at), "labels": {"site": "k1"}})
    store.bulk_upsert("alerts", docs)
    exact_scores, exact_counts = posture.open_scores(store, now)
    monkeypatch.setattr("watchkeeper.store.sqlite.MAX_GROUPS", 4)
    scores, counts = posture.open_scores(store, now)
    assert counts == exact_counts == {"k1": 12}
    assert scores["k1"] == pytest.approx(exact_scores["k1"], rel=0.15)
    store.close()
