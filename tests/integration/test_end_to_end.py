"""One thread end to end: simulate -> ingest -> detect -> store -> CLI and HTTP API,
on the embedded backends and on the real Kafka + Elasticsearch."""
from __future__ import annotations

import json

import httpx
import pytest

from watchkeeper.simulate import write_scenario

from .conftest import api_key, free_port, run_cli, wait_http


@pytest.fixture(params=["embedded", "kafka+elasticsearch"])
def backends(request, tmp_path, unique):
    if request.param == "embedded":
        return ["--bus", "memory://", "--store", f"sqlite:///{tmp_path}/wk.db"], {}
    kafka = request.getfixturevalue("kafka_url")
    es = request.getfixturevalue("es_url")
    # A namespace and index prefix of its own: other tests on the broker never interfere.
    return (["--bus", kafka, "--store", f"{es}/?prefix=wktest-{unique}"],
            {"WATCHKEEPER_NAMESPACE": f"t{unique}"})


def test_scan_in_a_capture_becomes_an_alert_in_the_api(backends, tmp_path, server):
    options, env = backends
    pcap = tmp_path / "scenario.pcap"
    summary = write_scenario(str(pcap), scan_ports=120)

    ingest = run_cli("ingest", str(pcap), *options, env=env)
    assert ingest.returncode == 0, ingest.stderr

    listed = run_cli("alerts", "--json", *options, env=env)
    assert listed.returncode == 0, listed.stderr
    alerts = [json.loads(line) for line in listed.stdout.splitlines()]
    scans = [a for a in alerts if a["watchkeeper"]["alert"]["category"] == "scan"]
    assert [a["source"]["ip"] for a in scans] == [summary.scanner]
    assert not {a["source"]["ip"] for a in alerts} & set(summary.benign_hosts)

    events = run_cli("events", "--json", "--dataset", "watchkeeper.flow", *options, env=env)
    flows = [json.loads(line) for line in events.stdout.splitlines()]
    assert len(flows) >= summary.scanned_ports
    assert len({f["event"]["id"] for f in flows}) == len(flows)
    evidence = set(scans[0]["watchkeeper"]["alert"]["evidence"])
    assert evidence <= {f["event"]["id"] for f in flows}

    port = free_port()
    headers = api_key(*options, env=env)
    proc = server("serve", "--port", str(port), *options, env=env)
    wait_http(f"http://127.0.0.1:{port}/health", process=proc)
    body = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts",
                     params={"category": "scan"}, headers=headers).json()
    assert body["total"] == 1 and body["items"][0]["source"]["ip"] == summary.scanner
    incident_id = body["items"][0]["watchkeeper"]["alert"]["incident_id"]
    incident = httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}",
                         headers=headers).json()
    assert incident["watchkeeper"]["incident"]["entity"] == summary.scanner
    assert incident["watchkeeper"]["incident"]["categories"] == ["scan"]
    assert incident["watchkeeper"]["incident"]["gbt_code"] == "NASCAN"
    linked = httpx.get(f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}/alerts",
                       headers=headers).json()
    assert [a["event"]["id"] for a in linked] == [body["items"][0]["event"]["id"]]


def test_ingest_twice_writes_no_duplicates(backends, tmp_path):
    options, env = backends
    pcap = tmp_path / "scenario.pcap"
    write_scenario(str(pcap), scan_ports=40, benign_sessions=5)
    for _ in range(2):
        assert run_cli("ingest", str(pcap), *options, env=env).returncode == 0
    flows = run_cli("events", "--json", *options, env=env).stdout.splitlines()
    ids = [json.loads(line)["event"]["id"] for line in flows]
    assert ids and len(ids) == len(set(ids))
    alerts = run_cli("alerts", "--json", *options, env=env).stdout.splitlines()
    assert len(alerts) == 1


def test_unreachable_backends_fail_with_one_clear_line(tmp_path):
    pcap = tmp_path / "x.pcap"
    write_scenario(str(pcap), scan_ports=5, benign_sessions=1)
    kafka = run_cli("ingest", str(pcap), "--bus", "kafka://127.0.0.1:1", timeout=120)
    assert kafka.returncode != 0
    assert "cannot reach Kafka at 127.0.0.1:1" in kafka.stderr
    assert "Traceback" not in kafka.stderr and len(kafka.stderr.strip().splitlines()) == 1
    es = run_cli("alerts", "--json", "--store", "http://127.0.0.1:1", timeout=120)
    assert es.returncode != 0
    assert "cannot reach Elasticsearch at http://127.0.0.1:1" in es.stderr
    assert "Traceback" not in es.stderr


def test_bad_config_names_the_key(tmp_path):
    config = tmp_path / "wk.yaml"
    config.write_text("netflow_port: 70000\nretention_months: 2\n")
    result = run_cli("alerts", "--json", "--config", str(config))
    assert result.returncode == 2
    assert "netflow_port" in result.stderr and "Traceback" not in result.stderr


def test_allowlist_applies_to_new_and_stored_alerts(tmp_path):
    pcap = tmp_path / "scenario.pcap"
    summary = write_scenario(str(pcap), scan_ports=60, benign_sessions=5)
    store = ["--store", f"sqlite:///{tmp_path}/wk.db"]
    assert run_cli("ingest", str(pcap), *store).returncode == 0
    config = tmp_path / "wk.yaml"
    config.write_text(json.dumps({"allowlist": [
        {"cidr": f"{summary.scanner}/32", "detector": "scan", "reason": "authorised scanner"}]}))
    applied = run_cli("allowlist", "apply", "--config", str(config), *store)
    assert applied.returncode == 0 and "suppressed 1 stored alert" in applied.stdout
    alerts = [json.loads(x) for x in run_cli("alerts", "--json", *store).stdout.splitlines()]
    assert [(a["watchkeeper"]["alert"]["status"], a["watchkeeper"]["alert"]["verdict"],
             a["watchkeeper"]["alert"]["suppressed_by"]) for a in alerts] == [
        ("closed", "benign_positive", "allowlist")]
    from watchkeeper.store import Query
    from watchkeeper.store.sqlite import SqliteStore
    audit = SqliteStore(f"sqlite:///{tmp_path}/wk.db").search("audit", Query()).items
    assert [(a["user"]["name"], a["message"]) for a in audit] == [("allowlist",
                                                                   "authorised scanner")]
    # a fresh ingest into another store with the allowlist configured: suppressed at birth
    other = ["--store", f"sqlite:///{tmp_path}/other.db", "--config", str(config)]
    assert run_cli("ingest", str(pcap), *other).returncode == 0
    fresh = [json.loads(x) for x in run_cli("alerts", "--json", *other).stdout.splitlines()]
    assert fresh[0]["watchkeeper"]["alert"]["suppressed_by"] == "allowlist"
    assert fresh[0]["watchkeeper"]["alert"]["suppressed_reason"] == "authorised scanner"


def test_train_fits_and_saves_an_anomaly_model(tmp_path):
    store = ["--store", f"sqlite:///{tmp_path}/wk.db"]
    for seed in range(3):    # a few baseline periods of simulated benign traffic
        pcap = tmp_path / f"baseline{seed}.pcap"
        write_scenario(str(pcap), seed=seed, start=1_790_000_000 + seed * 900,
                       scan_ports=1, benign_sessions=60)
        assert run_cli("ingest", str(pcap), *store).returncode == 0
    out = tmp_path / "model.joblib"
    result = run_cli("train", "--since", "2026-09-21T00:00:00Z", "--until",
                     "2026-09-23T00:00:00Z", "--out", str(out), "--window-seconds", "60",
                     *store)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["windows"] >= 50 and out.exists()
