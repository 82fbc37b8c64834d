"""`watchkeeper run` with its collectors: followed Zeek/Suricata files and syslog from a real
sender reach the API."""
from __future__ import annotations

import json
import subprocess
import time

import httpx

from .conftest import ANY_PORTS, api_key, free_port, wait_http

HEADER = "\n".join([
    "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-",
    "#path\tconn",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t"
    "orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t"
    "orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents",
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring"
    "\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]", ""])
ALERT = {"timestamp": "2026-11-20T10:15:02.123456+0000", "flow_id": 1181423911262447,
         "event_type": "alert", "src_ip": "10.1.20.7", "src_port": 51734,
         "dest_ip": "203.0.113.80", "dest_port": 80, "proto": "TCP",
         "alert": {"action": "allowed", "gid": 1, "signature_id": 2024897, "rev": 4,
                   "signature": "ET MALWARE Possible Agent Tesla HTTP exfiltration",
                   "category": "A Network Trojan was detected", "severity": 1}}


def _conn_row(i: int) -> str:
    return (f"{1_795_000_000 + i}.250000\tCz{i:05d}\t10.1.20.{i}\t{40000 + i}\t93.184.216.34\t"
            "443\ttcp\tssl\t1.25\t517\t4312\tSF\tT\tF\t0\tShADadFf\t9\t997\t8\t4744\t-\n")


def _wait_total(url: str, params: dict, want: int, headers: dict,
                deadline_s: float = 60) -> dict:
    end = time.monotonic() + deadline_s
    body: dict = {}
    while time.monotonic() < end:
        body = httpx.get(url, params=params, headers=headers, timeout=5).json()
        if body["total"] >= want:
            return body
        time.sleep(0.3)
    return body


def test_followed_files_reach_the_api(server, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    conn = logs / "conn.log"
    conn.write_text(HEADER + _conn_row(1))
    config = tmp_path / "wk.yaml"
    config.write_text(json.dumps({"tail_paths": [str(logs / "*.log"), str(logs / "eve.json")],
                                  "data_dir": str(tmp_path / "state")}))
    port = free_port()
    headers = api_key("--store", f"sqlite:///{tmp_path}/wk.db")
    proc = server("run", "--config", str(config), "--port", str(port), *ANY_PORTS,
                  "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", process=proc)
    with conn.open("a") as fh:                       # lines written while it runs
        fh.write(_conn_row(2) + _conn_row(3))
    (logs / "eve.json").write_text(json.dumps(ALERT) + "\n")

    flows = _wait_total(f"{base}/api/v1/events", {"dataset": "watchkeeper.flow"}, 3, headers)
    assert flows["total"] == 3
    assert {f["watchkeeper"]["flow"]["uid"] for f in flows["items"]} == {
        "Cz00001", "Cz00002", "Cz00003"}
    alerts = _wait_total(f"{base}/api/v1/alerts", {"category": "ids"}, 1, headers)
    assert alerts["total"] == 1
    assert alerts["items"][0]["rule"]["id"] == "suricata:2024897"


def test_syslog_from_logger_reaches_the_api(server, tmp_path):
    port, syslog_port = free_port(), free_port()
    config = tmp_path / "wk.yaml"
    config.write_text(json.dumps({"status_seconds": 1}))
    headers = api_key("--store", f"sqlite:///{tmp_path}/wk.db")
    proc = server("run", "--config", str(config), "--port", str(port),
                  "--syslog-port", str(syslog_port), "--netflow-port", "0",
                  "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", process=proc)
    line = "Failed password for invalid user admin from 203.0.113.9 port 52814 ssh2"
    subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(syslog_port), "--tcp",
                    "--octet-count", "--rfc5424", "-t", "sshd", line], check=True, timeout=30)
    events = _wait_total(f"{base}/api/v1/events", {"dataset": "watchkeeper.syslog"}, 1, headers)
    assert events["total"] == 1
    event = events["items"][0]
    assert (event["user"]["name"], event["source"]["ip"]) == ("admin", "203.0.113.9")
    assert event["event"]["outcome"] == "failure"
    # the collector's counters reach the store for the command-centre screen
    end = time.monotonic() + 30
    while time.monotonic() < end:
        points = httpx.get(f"{base}/api/v1/events", params={"dataset": "watchkeeper.collector",
                                                            "limit": 100},
                           headers=headers, timeout=5).json()
        syslog = [p["watchkeeper"]["collector"]["counters"] for p in points["items"]
                  if p["watchkeeper"]["collector"]["name"] == "syslog"]
        if any(c.get("received", 0) >= 1 and c.get("parsed", 0) >= 1 for c in syslog):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no syslog counters with the message counted: {points}")
    metrics = httpx.get(f"{base}/metrics/", timeout=5).text
    assert 'watchkeeper_collector_counter{collector="syslog",counter="received"}' in metrics


def test_a_busy_syslog_port_fails_run_with_one_line(tmp_path):
    import socket
    import sys
    from .conftest import ROOT
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "app.cli", "run", "--port",
                                 str(free_port()), "--syslog-port", str(taken), "--netflow-port", "0",
                                 "--store",
                                 f"sqlite:///{tmp_path}/wk.db"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen for syslog on 127.0.0.1:{taken}" in result.stderr
    assert "Traceback" not in result.stderr
