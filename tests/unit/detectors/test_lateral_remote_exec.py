"""Lateral movement by remote execution: a service created or a task registered on another
internal host raises on the first hop, on a fresh install; learned pairs and inventory
management servers stay quiet."""
from __future__ import annotations

import json

import pytest

from collectors.tailers.common import Context
from collectors.tailers.zeek import ZeekParser
from detectors.base import replay
from detectors.lateral import LateralConfig, LateralMovementDetector
from watchkeeper import schema, timeutil
from watchkeeper.documents import alert_document
from watchkeeper.networks import InternalNetworks
from tests.unit.detectors.ongoing import assert_kept_current

T0 = 1_700_000_000.0
NETS = InternalNetworks()


def call(i, t, src, dst, operation="CreateServiceW", endpoint="svcctl", direction="internal"):
    return {"@timestamp": timeutil.format(t),
            "event": {"id": f"r{i}", "kind": "event", "dataset": schema.DCE_RPC},
            "source": {"ip": src, "port": 50000 + i}, "destination": {"ip": dst, "port": 445},
            "network": {"transport": "tcp", "protocol": "dce_rpc", "direction": direction},
            "dce_rpc": {"endpoint": endpoint, "operation": operation}}


def psexec(i, t, src, dst):
    """What PsExec does on one target: open the manager, create, start, query, close."""
    ops = ["OpenSCManagerW", "CreateServiceWOW64W", "StartServiceW", "QueryServiceStatus",
           "CloseServiceHandle"]
    return [call(10 * i + k, t + 0.01 * k, src, dst, op) for k, op in enumerate(ops)]


def test_first_hop_alerts_on_a_fresh_install():
    (alert,) = replay(LateralMovementDetector(), psexec(0, T0, "10.0.0.66", "10.0.1.10"))
    assert alert.rule_id == "wk.lateral.remote_execution" and alert.category == "lateral_movement"
    assert alert.entity == "10.0.0.66" and alert.destination_ip == "10.0.1.10"
    assert alert.severity == 3 and alert.technique_id == "T1569.002"
    assert "svcctl CreateServiceWOW64W" in alert.message and alert.evidence == ["r1"]


def test_more_targets_re_raise_when_they_double():
    events = [e for i in range(5) for e in psexec(i, T0 + 60 * i, "10.0.0.66", f"10.0.1.{i}")]
    alerts = replay(LateralMovementDetector(LateralConfig(refresh_seconds=3600)), events)
    assert [a.count for a in alerts] == [1, 2, 4]
    assert alerts[1].severity == 4 and alerts[2].related_ips == [f"10.0.1.{i}" for i in range(4)]


def test_remote_execution_going_on_keeps_its_alert_current():
    # PsExec to a new host every 20 s for 10 minutes: doubling alone last raised at the 16th.
    events = [e for i in range(30) for e in psexec(i, T0 + 20 * i, "10.0.0.66", f"10.0.1.{i}")]
    assert_kept_current(replay(LateralMovementDetector(), events), T0 + 29 * 20)


def test_remote_execution_longer_than_the_window_keeps_one_alert():
    # PsExec to a new host a minute for 100 minutes: one alert id, first seen at the start.
    events = [e for i in range(100) for e in psexec(i, T0 + 60 * i, "10.0.0.66", f"10.0.1.{i}")]
    alerts = replay(LateralMovementDetector(), events)
    assert len({alert_document(a, created=0.0)["event"]["id"] for a in alerts}) == 1
    assert alerts[-1].first_seen == alerts[0].first_seen == pytest.approx(T0, abs=0.1)
    assert_kept_current(alerts, T0 + 99 * 60, most=60.0)


def test_task_registration_and_service_reconfiguration_count():
    alerts = replay(LateralMovementDetector(), [
        call(1, T0, "10.0.0.7", "10.0.1.1", "SchRpcRegisterTask", "ITaskSchedulerService"),
        call(2, T0 + 1, "10.0.0.8", "10.0.1.1", "NetrJobAdd", "atsvc"),
        call(3, T0 + 2, "10.0.0.9", "10.0.1.1", "ChangeServiceConfigW")])
    assert [a.entity for a in alerts] == ["10.0.0.7", "10.0.0.8", "10.0.0.9"]


def test_reading_services_or_the_registry_is_not_remote_execution():
    events = [call(i, T0 + i, "10.0.0.66", "10.0.1.1", op, ep) for i, (ep, op) in enumerate([
        ("svcctl", "OpenSCManagerW"), ("svcctl", "QueryServiceStatus"),
        ("svcctl", "EnumServicesStatusW"), ("svcctl", "StartServiceW"),
        ("winreg", "BaseRegQueryValue"), ("ISystemActivator", "RemoteCreateInstance")])]
    assert replay(LateralMovementDetector(), events) == []


def test_inventory_servers_external_targets_and_learned_pairs_are_quiet():
    det = LateralMovementDetector(LateralConfig(server_networks=["10.0.9.0/24"]))
    assert replay(det, psexec(0, T0, "10.0.9.5", "10.0.1.1")) == []         # SCCM-like push
    assert replay(det, [call(1, T0, "10.0.0.66", "203.0.113.5",
                             direction="outbound")]) == []
    first = replay(det, psexec(2, T0, "10.0.0.66", "10.0.1.1"))
    again = replay(det, psexec(3, T0 + 7200, "10.0.0.66", "10.0.1.1"))    # window passed
    assert len(first) == 1 and again == []


def test_state_survives_a_restart_without_a_second_alert():
    det = LateralMovementDetector()
    assert len(replay(det, psexec(0, T0, "10.0.0.66", "10.0.1.1"))) == 1
    restored = LateralMovementDetector()
    restored.restore(json.loads(json.dumps(det.snapshot())))
    assert replay(restored, psexec(1, T0 + 5, "10.0.0.66", "10.0.1.1")) == []
    (alert,) = replay(restored, psexec(2, T0 + 10, "10.0.0.66", "10.0.1.2"))
    assert alert.count == 2                     # the first target is still in the window


def test_zeek_dce_rpc_log_raises_the_same_alert():
    parser = ZeekParser("/logs/dce_rpc.log", Context("sensor-1", NETS))
    rows = [{"ts": T0 + k, "uid": "CpsX1", "id.orig_h": "192.168.10.31", "id.orig_p": 49285,
             "id.resp_h": "192.168.10.10", "id.resp_p": 445, "rtt": 0.0004,
             "named_pipe": "svcctl", "endpoint": "svcctl", "operation": op}
            for k, op in enumerate(["OpenSCManagerW", "CreateServiceWOW64W"])]
    docs = [parser.parse(json.dumps(r)).doc for r in rows]
    assert all(schema.validate(d) for d in docs)
    assert docs[1]["dce_rpc"] == {"endpoint": "svcctl", "operation": "CreateServiceWOW64W",
                                  "named_pipe": "svcctl"}
    (alert,) = replay(LateralMovementDetector(), docs)
    assert alert.entity == "192.168.10.31" and alert.destination_ip == "192.168.10.10"
    bad = parser.parse(json.dumps({"ts": T0, "id.orig_h": "10.0.0.1", "id.orig_p": 1,
                                   "id.resp_h": "10.0.0.2", "id.resp_p": 445}))
    assert bad.outcome == "malformed" and "endpoint" in bad.reason


def test_a_wmi_method_call_counts_from_a_workstation_only():
    wmi = [call(1, T0, "10.0.0.66", "10.0.1.1", "ExecMethod", "IWbemServices")]
    (alert,) = replay(LateralMovementDetector(), wmi)
    assert "IWbemServices ExecMethod" in alert.message
    det = LateralMovementDetector()
    serving = {"@timestamp": timeutil.format(T0 - 60),
               "event": {"id": "f1", "kind": "event", "dataset": schema.FLOW},
               "source": {"ip": "10.0.0.99", "port": 50000},
               "destination": {"ip": "10.0.0.66", "port": 443, "packets": 5},
               "network": {"transport": "tcp", "direction": "internal"},
               "watchkeeper": {"flow": {"conn_state": "SF"}}}
    assert replay(det, [serving] + wmi) == []       # 10.0.0.66 serves: a management server
    assert replay(LateralMovementDetector(LateralConfig(server_networks=["10.0.0.0/24"])),
                  wmi) == []


def test_a_fast_round_that_stops_is_stored_with_its_final_count():
    # A script runs PsExec on six hosts in six seconds: raised at 1, 2 and 4 hosts. Another
    # host only reading service status moves the clock on; a refresh period (60 s) after the
    # last target, the final count is sent once, naming the call.
    events = [e for i in range(6) for e in psexec(i, T0 + i, "10.0.0.66", f"10.0.1.{i}")]
    clock = [call(900 + k, T0 + 10 + 10 * k, "10.0.0.77", "10.0.1.200", "QueryServiceStatus")
             for k in range(12)]
    stream = sorted(events + clock, key=lambda e: e["@timestamp"])
    alerts = replay(LateralMovementDetector(), stream)
    assert [a.count for a in alerts] == [1, 2, 4, 6]
    last = alerts[-1]
    assert last.first_seen == alerts[0].first_seen and "CreateServiceWOW64W" in last.message
    assert last.related_ips == [f"10.0.1.{i}" for i in range(6)]
    restarted = LateralMovementDetector()
    replay(restarted, events)
    again = LateralMovementDetector()
    again.restore(json.loads(json.dumps(restarted.snapshot())))
    assert [a.count for a in again.on_timer(T0 + 5 + 61)] == [6]
