"""DCE/RPC calls from packet payloads: which interface a client called, and which operation.

Remote service creation (PsExec, smbexec, Metasploit's psexec), scheduled tasks (atexec) and
remote registry writes travel as DCE/RPC over SMB named pipes (ncacn_np, TCP 445/139) or
straight over TCP (ncacn_ip_tcp). Their headers are in clear text even when the call's
arguments are not, so a flow meter can tell `svcctl CreateServiceW` from a file copy without
reassembling the stream — as Zeek's dce_rpc.log does (same endpoint and operation names).

Per packet: an SMB1 or SMB2 message whose command carries pipe data (SMB2 WRITE and IOCTL,
SMB1 WRITE_ANDX and TRANSACTION), or a bare DCE/RPC PDU. A BIND or ALTER_CONTEXT names the
interfaces (by UUID) of its presentation contexts; a REQUEST names a context and an opnum.
Contexts are remembered per (flow, pipe), so a call is reported with its interface. Only the
first fragment of a request carries the header we need; later fragments and responses are
ignored. Interfaces outside `ENDPOINTS` are not reported (authentication, directory and
mapper traffic is busy and says nothing about remote execution).
"""
from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from collectors.capture.appmeta.errors import AppParseError

SMB_PORTS = (139, 445)
REQUEST, BIND, ALTER_CONTEXT = 0, 11, 14
FIRST_FRAG = 0x01


def _uuid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le          # DCE/RPC carries UUIDs little-endian


# Interface UUID -> (Zeek's endpoint name, {opnum: operation}); opnums from the MS-SCMR,
# MS-TSCH, MS-RRP, MS-DCOM and MS-WMI specifications.
ENDPOINTS: dict[bytes, tuple[str, dict[int, str]]] = {
    _uuid("367abb81-9844-35f1-ad32-98f038001003"): ("svcctl", {
        0: "CloseServiceHandle", 1: "ControlService", 2: "DeleteService",
        6: "QueryServiceStatus", 11: "ChangeServiceConfigW", 12: "CreateServiceW",
        14: "EnumServicesStatusW", 15: "OpenSCManagerW", 16: "OpenServiceW",
        17: "QueryServiceConfigW", 19: "StartServiceW", 23: "ChangeServiceConfigA",
        24: "CreateServiceA", 27: "OpenSCManagerA", 28: "OpenServiceA", 31: "StartServiceA",
        37: "ChangeServiceConfig2W", 40: "QueryServiceStatusEx", 42: "EnumServicesStatusExW",
        44: "CreateServiceWOW64A", 45: "CreateServiceWOW64W", 60: "CreateWowService"}),
    _uuid("1ff70682-0a51-30e8-076d-740be8cee98b"): ("atsvc", {
        0: "NetrJobAdd", 1: "NetrJobDel", 2: "NetrJobEnum", 3: "NetrJobGetInfo"}),
    _uuid("86d35949-83c9-4044-b424-db363231fd0c"): ("ITaskSchedulerService", {
        0: "SchRpcHighestVersion", 1: "SchRpcRegisterTask", 2: "SchRpcRetrieveTask",
        12: "SchRpcRun", 13: "SchRpcDelete", 14: "SchRpcRename"}),
    _uuid("338cd001-2244-31f1-aaaa-900038001003"): ("winreg", {
        2: "OpenLocalMachine", 5: "BaseRegCloseKey", 6: "BaseRegCreateKey",
        7: "BaseRegDeleteKey", 8: "BaseRegDeleteValue", 15: "BaseRegOpenKey",
        17: "BaseRegQueryValue", 20: "BaseRegSaveKey", 22: "BaseRegSetValue"}),
    _uuid("000001a0-0000-0000-c000-000000000046"): ("ISystemActivator", {
        3: "RemoteGetClassObject", 4: "RemoteCreateInstance"}),
    _uuid("f309ad18-d86a-11d0-a075-00c04fb68820"): ("IWbemLevel1Login", {
        3: "EstablishPosition", 4: "RequestChallenge", 5: "WBEMLogin", 6: "NTLMLogin"}),
    _uuid("9556dc99-828c-11cf-a37e-00aa003240c7"): ("IWbemServices", {
        3: "OpenNamespace", 6: "GetObject", 20: "ExecQuery", 21: "ExecQueryAsync",
        24: "ExecMethod", 25: "ExecMethodAsync"}),
}


@dataclass(frozen=True, slots=True)
class DceRpcCall:
    endpoint: str                   # "svcctl"
    operation: str                  # "CreateServiceW" (or "opnum_N" when not in the table)
    over_smb: bool                  # through an SMB named pipe, else straight over TCP
    call_id: int


@dataclass(frozen=True, slots=True)
class _Pdu:
    ptype: int
    flags: int
    call_id: int
    body: bytes                     # after the 16-byte common header


def pipe_data(payload: bytes) -> tuple[bytes, bytes] | None:
    """(pipe id, data) of an SMB message that writes to a pipe, else None."""
    if len(payload) < 8 or payload[0] != 0:          # NetBIOS session message
        return None
    magic = payload[4:8]
    if magic == b"\xfeSMB":
        return _smb2(payload)
    if magic == b"\xffSMB":
        return _smb1(payload)
    return None


def _smb2(payload: bytes) -> tuple[bytes, bytes] | None:
    if len(payload) < 4 + 64 + 48:
        return None
    flags = struct.unpack_from("<I", payload, 4 + 16)[0]
    if flags & 1:                                   # SERVER_TO_REDIR: a response
        return None
    command = struct.unpack_from("<H", payload, 4 + 12)[0]
    body = 4 + 64
    if command == 9:                                # WRITE
        offset, length = struct.unpack_from("<HI", payload, body + 2)
        fid = payload[body + 16:body + 32]
    elif command == 11:                             # IOCTL (FSCTL_PIPE_TRANSCEIVE)
        fid = payload[body + 8:body + 24]
        offset, length = struct.unpack_from("<II", payload, body + 24)
    else:
        return None
    return fid, _slice(payload, 4 + offset, length)


def _smb1(payload: bytes) -> tuple[bytes, bytes] | None:
    if len(payload) < 4 + 33:
        return None
    command, flags = payload[8], payload[4 + 9]
    if flags & 0x80:                                # reply
        return None
    words = 4 + 33                                  # after the WordCount byte
    count = payload[4 + 32]
    if command == 0x2F and count in (12, 14):       # WRITE_ANDX
        fid = payload[words + 4:words + 6]
        length, offset = struct.unpack_from("<HH", payload, words + 20)
    elif command == 0x25 and count >= 16 and payload[words + 28] == 0x26:   # TransactNmPipe
        length, offset = struct.unpack_from("<HH", payload, words + 22)
        fid = payload[words + 30:words + 32]
    else:
        return None
    return fid, _slice(payload, 4 + offset, length)


def _slice(payload: bytes, start: int, length: int) -> bytes:
    if start < 4 or start > len(payload):
        raise AppParseError("SMB data offset outside the message")
    return payload[start:start + length]              # may be cut by the segment end


def parse_pdu(data: bytes) -> _Pdu | None:
    """The common header of a connection-oriented DCE/RPC PDU, else None."""
    if len(data) < 16 or data[0] != 5 or data[1] != 0:
        return None
    if data[4] & 0xF0 != 0x10:          # little-endian integers: every Windows peer
        return None
    ptype, flags = data[2], data[3]
    frag_len, auth_len, call_id = struct.unpack_from("<HHI", data, 8)
    if frag_len < 16 or auth_len > frag_len:
        raise AppParseError("DCE/RPC fragment length out of range")
    return _Pdu(ptype, flags, call_id, data[16:frag_len])


def bound_interfaces(pdu: _Pdu) -> dict[int, bytes]:
    """Presentation context id -> interface UUID, from a BIND or ALTER_CONTEXT body."""
    body = pdu.body
    if len(body) < 12:
        raise AppParseError("DCE/RPC bind shorter than its header")
    count, at, out = body[8], 12, {}
    for _ in range(count):
        if at + 24 > len(body):
            break                                   # cut by the segment end
        context_id, transfers = struct.unpack_from("<HB", body, at)
        out[context_id] = body[at + 4:at + 20]
        at += 24 + 20 * transfers
    return out


def request_call(pdu: _Pdu) -> tuple[int, int] | None:
    """(context id, opnum) of the first fragment of a REQUEST."""
    if not pdu.flags & FIRST_FRAG:
        return None
    if len(pdu.body) < 8:
        raise AppParseError("DCE/RPC request shorter than its header")
    _, context_id, opnum = struct.unpack_from("<IHH", pdu.body, 0)
    return context_id, opnum


class DceRpcTracker:
    """Contexts per (flow, pipe) and the calls made on the interfaces we name."""

    def __init__(self, max_bindings: int = 50_000):
        self._contexts: dict[tuple[bytes, bytes], dict[int, bytes]] = {}
        self._max = max_bindings

    def payload(self, flow_key: bytes, payload: bytes, smb: bool) -> DceRpcCall | None:
        try:
            return self._payload(flow_key, payload, smb)
        except (struct.error, IndexError) as exc:
            raise AppParseError(f"SMB or DCE/RPC message cut short: {exc}") from None

    def _payload(self, flow_key: bytes, payload: bytes, smb: bool) -> DceRpcCall | None:
        if smb:
            found = pipe_data(payload)
            if found is None:
                return None
            pipe, data = found
        else:
            pipe, data = b"", payload
        pdu = parse_pdu(data)
        if pdu is None:
            return None
        key = (flow_key, pipe)
        if pdu.ptype in (BIND, ALTER_CONTEXT):
            contexts = self._contexts.pop(key, {})
            contexts.update(bound_interfaces(pdu))
            self._contexts[key] = contexts            # most recent last: evict the oldest
            if len(self._contexts) > self._max:
                del self._contexts[next(iter(self._contexts))]
            return None
        if pdu.ptype != REQUEST:
            return None
        call = request_call(pdu)
        interface = self._contexts.get(key, {}).get(call[0]) if call else None
        if interface not in ENDPOINTS:
            return None
        endpoint, operations = ENDPOINTS[interface]
        return DceRpcCall(endpoint, operations.get(call[1], f"opnum_{call[1]}"), smb,
                          pdu.call_id)
