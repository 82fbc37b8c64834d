"""DCE/RPC calls from captures: SMB2 and SMB1 named pipes, bare TCP, bad and cut messages.

The messages are built here from the specifications ([MS-SMB2] 2.2.1/2.2.21/2.2.31, [MS-CIFS]
2.2.4.43 WRITE_ANDX, [C706] chapter 12 connection-oriented PDUs), not from our parser's code;
two real captures (PsExec by 401trg) and Zeek's benign SMB captures check the same path."""
from __future__ import annotations

import struct
import uuid

import pytest
from scapy.all import IP, TCP, Raw

from collectors.capture import Capture, iter_flow_documents
from collectors.capture.appmeta.tracker import AppRecord
from collectors.capture.documents.app import app_document
from collectors.capture.flows.flow import FlowConfig
from collectors.capture.sources.pcap import open_records
from tests.datafiles import data_file
from watchkeeper import schema
from watchkeeper.networks import InternalNetworks

from .packets import write_pcap

C, S = "10.0.0.5", "10.0.0.9"
SVCCTL = "367abb81-9844-35f1-ad32-98f038001003"
SRVSVC = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
TSCH = "86d35949-83c9-4044-b424-db363231fd0c"
NDR = "8a885d04-1ceb-11c9-9fe8-08002b104860"
NETS = InternalNetworks(["10.0.0.0/8"])


def _header(ptype: int, flags: int, body: bytes, call_id: int) -> bytes:
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0", 16 + len(body), 0,
                       call_id) + body


def bind(contexts: list[tuple[int, str]], call_id: int = 1) -> bytes:
    body = struct.pack("<HHIB3x", 4280, 4280, 0, len(contexts))
    for context_id, iface in contexts:
        body += struct.pack("<HBx", context_id, 1) + uuid.UUID(iface).bytes_le
        body += struct.pack("<HH", 2, 0) + uuid.UUID(NDR).bytes_le + struct.pack("<I", 2)
    return _header(11, 3, body, call_id)


def request(context_id: int, opnum: int, call_id: int = 2, flags: int = 3) -> bytes:
    stub = b"\x00" * 40
    return _header(0, flags, struct.pack("<IHH", len(stub), context_id, opnum) + stub, call_id)


def _netbios(message: bytes) -> bytes:
    return struct.pack(">I", len(message)) + message


def smb2(command: int, body: bytes, flags: int = 0, message_id: int = 5) -> bytes:
    header = struct.pack("<4sHHIHHIIQIIQ16s", b"\xfeSMB", 64, 1, 0, command, 1, flags, 0,
                         message_id, 0, 1, 0x1234, b"\0" * 16)
    return _netbios(header + body)


def smb2_write(fid: bytes, data: bytes) -> bytes:
    body = struct.pack("<HHIQ16sIIHHI", 49, 64 + 48, len(data), 0, fid, 0, 0, 0, 0, 0)
    return smb2(9, body + data)


def smb2_ioctl(fid: bytes, data: bytes) -> bytes:
    body = struct.pack("<HHI16sIIIIIIII", 57, 0, 0x0011C017, fid, 64 + 56, len(data), 0, 0,
                       0, 1024, 1, 0)
    return smb2(11, body + data)


def smb1_write_andx(fid: int, data: bytes) -> bytes:
    header = struct.pack("<4sBIBHH8sHHHHH", b"\xffSMB", 0x2F, 0, 0x18, 0xC807, 0, b"\0" * 8,
                         0, 1, 2, 3, 4)
    words = struct.pack("<BBHHIIHHHHHI", 0xFF, 0, 0, fid, 0, 0, 8, len(data), 0, len(data),
                        32 + 1 + 28 + 2 + 1, 0)
    return _netbios(header + bytes([14]) + words + struct.pack("<H", len(data) + 1) + b"\0"
                    + data)


FID_A, FID_B = b"A" * 16, b"B" * 16


def _segments(payloads: list[bytes], dport: int = 445, start: float = 1.0):
    packets = [(start, IP(src=C, dst=S) / TCP(sport=50000, dport=dport, flags="S", seq=1)),
               (start + 0.001, IP(src=S, dst=C) / TCP(sport=dport, dport=50000, flags="SA",
                                                      seq=7, ack=2))]
    seq = 2
    for i, payload in enumerate(payloads):
        packets.append((start + 0.01 * (i + 1),
                        IP(src=C, dst=S) / TCP(sport=50000, dport=dport, flags="PA", seq=seq,
                                               ack=8) / Raw(payload)))
        seq += len(payload)
    return packets


def calls(tmp_path, payloads, dport=445):
    capture = Capture(iter(list(open_records(str(write_pcap(tmp_path, _segments(payloads,
                                                                                 dport)))))),
                      FlowConfig(), app=True)
    records = [r for r in capture if isinstance(r, AppRecord)]
    return [(r.request.endpoint, r.request.operation) for r in records], records, capture


def test_smb2_bind_then_create_service_is_one_call(tmp_path):
    found, records, _ = calls(tmp_path, [smb2_write(FID_A, bind([(0, SVCCTL)])),
                                         smb2_ioctl(FID_A, request(0, 15)),
                                         smb2_ioctl(FID_A, request(0, 12, call_id=3))])
    assert found == [("svcctl", "OpenSCManagerW"), ("svcctl", "CreateServiceW")]
    doc = app_document(records[1], "sensor", NETS)
    assert doc["event"]["dataset"] == schema.DCE_RPC and schema.validate(doc)
    assert doc["dce_rpc"] == {"endpoint": "svcctl", "operation": "CreateServiceW"}
    assert doc["event"]["action"] == "svcctl.CreateServiceW"
    assert doc["source"] == {"ip": C, "port": 50000} and doc["destination"]["ip"] == S
    assert doc["network"]["application"] == "smb" and doc["network"]["direction"] == "internal"
    # Same flow, same time: a different call id is a different event.
    assert doc["event"]["id"] != app_document(records[0], "sensor", NETS)["event"]["id"]


def test_smb1_write_andx_pipe(tmp_path):
    found, _, _ = calls(tmp_path, [smb1_write_andx(0x4001, bind([(0, SVCCTL)])),
                                   smb1_write_andx(0x4001, request(0, 24))], dport=139)
    assert found == [("svcctl", "CreateServiceA")]


def test_bare_tcp_task_registration(tmp_path):
    found, records, _ = calls(tmp_path, [bind([(1, TSCH)]), request(1, 1)], dport=49667)
    assert found == [("ITaskSchedulerService", "SchRpcRegisterTask")]
    assert "application" not in app_document(records[0], "sensor", NETS)["network"]


def test_contexts_belong_to_their_pipe(tmp_path):
    """srvsvc on one pipe and svcctl on another, both as context 0: a call on the srvsvc pipe
    is not a service call."""
    found, _, _ = calls(tmp_path, [smb2_write(FID_A, bind([(0, SRVSVC)])),
                                   smb2_write(FID_B, bind([(0, SVCCTL)])),
                                   smb2_ioctl(FID_A, request(0, 12)),
                                   smb2_ioctl(FID_B, request(0, 45))])
    assert found == [("svcctl", "CreateServiceWOW64W")]


def test_unbound_unnamed_later_fragments_and_responses_are_not_calls(tmp_path):
    found, _, capture = calls(tmp_path, [
        smb2_ioctl(FID_A, request(0, 12)),                         # no bind seen
        smb2_write(FID_A, bind([(0, SRVSVC)])), smb2_ioctl(FID_A, request(0, 15)),  # not named
        smb2_write(FID_B, bind([(0, SVCCTL)])),
        smb2_ioctl(FID_B, request(0, 12, flags=2)),                # a last fragment only
        smb2(11, b"\0" * 60, flags=1),                             # a response
        smb2(5, b"\0" * 60)])                                      # CREATE: no pipe data
    assert found == [] and capture.app.stats.malformed == 0


def _long_fragment() -> bytes:
    pdu = bytearray(request(0, 12))
    pdu[8:10] = struct.pack("<H", 0xFFFF)            # the rest would follow in later segments
    return bytes(pdu)


def _offset_outside() -> bytes:
    message = bytearray(smb2_write(FID_A, request(0, 12)))
    message[4 + 64 + 2:4 + 64 + 4] = struct.pack("<H", 4000)    # DataOffset past the message
    return bytes(message)


@pytest.mark.parametrize("payload, malformed", [
    (_long_fragment(), 0),                                      # read as far as it goes
    (_offset_outside(), 1),
    (smb2_write(FID_A, bind([(0, SVCCTL), (1, TSCH)]))[:-30], 0),   # bind cut by the segment
    (struct.pack(">I", 70) + b"\xfeSMB" + b"\0" * 8 + struct.pack("<H", 9) + b"\0" * 50, 0),
], ids=["long-fragment", "offset-outside", "cut-bind", "cut-smb2-header"])
def test_bad_and_cut_messages_are_counted_never_raised(tmp_path, payload, malformed):
    found, _, capture = calls(tmp_path, [payload, smb2_write(FID_B, bind([(0, SVCCTL)])),
                                         smb2_ioctl(FID_B, request(0, 12))])
    assert found == [("svcctl", "CreateServiceW")]      # the good call after it still counts
    assert capture.app.stats.malformed == malformed


def test_a_bad_fragment_length_is_malformed(tmp_path):
    bad = bytearray(request(0, 12))
    bad[8:10] = struct.pack("<H", 8)                               # shorter than the header
    _, _, capture = calls(tmp_path, [smb2_write(FID_A, bind([(0, SVCCTL)])),
                                     smb2_ioctl(FID_A, bytes(bad))])
    assert capture.app.stats.malformed == 1


def _real_calls(path) -> list[tuple[str, str, str, str]]:
    docs = iter_flow_documents([str(path)], "sensor", NETS, app=True)
    return [(d["source"]["ip"], d["destination"]["ip"], d["dce_rpc"]["endpoint"],
             d["dce_rpc"]["operation"]) for d in docs if d["event"]["dataset"] == schema.DCE_RPC]


def test_real_psexec_captures():
    psexec = _real_calls(data_file("public/lateral/401trg_smb-psexec-add-user.pcap"))
    assert ("192.168.10.31", "192.168.10.10", "svcctl", "CreateServiceWOW64W") in psexec
    assert {c[:3] for c in psexec} == {("192.168.10.31", "192.168.10.10", "svcctl")}
    metasploit = _real_calls(data_file(
        "public/lateral/401trg_smb-metasploit-psexec-pth-download-meterpreter.pcap"))
    assert [c[3] for c in metasploit] == ["OpenSCManagerW", "CreateServiceW", "StartServiceW",
                                          "DeleteService", "CloseServiceHandle"]


@pytest.mark.parametrize("name", ["zeek_smb2.pcap", "zeek_smb2_100_small_files.pcap",
                                  "zeek_smb2readwrite.pcap", "zeek_smb3.pcap"])
def test_benign_file_sharing_makes_no_remote_execution_call(name):
    calls_seen = _real_calls(data_file(f"benign/{name}"))
    assert not [c for c in calls_seen if c[2] == "svcctl" and "Create" in c[3]]
