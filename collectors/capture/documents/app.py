"""AppRecord -> ECS document, with the same fields the Zeek and Suricata tailers write
(`dns.*`, `http.*`/`url.*`/`user_agent.*`, `tls.*`, `dce_rpc.*` as Zeek's dce_rpc.log), so
detectors cannot tell the source."""
from __future__ import annotations

from watchkeeper import schema, timeutil
from watchkeeper.documents import community_id, transport_name
from watchkeeper.networks import InternalNetworks

from collectors.capture.appmeta import dnswire, kerberos, tlshello
from collectors.capture.appmeta.tracker import DATASETS, AppRecord

NETBIOS_PORT = 137


def app_document(rec: AppRecord, observer: str, networks: InternalNetworks,
                 site: str | None = None) -> dict:
    if rec.kind == "arp":
        return arp_document(rec, observer, networks, site)
    doc = {
        "@timestamp": timeutil.format(rec.ts),
        "event": {
            # Same flow, same request time, same kind: a re-read gives the same id.
            "id": schema.stable_id(observer, "app", rec.kind, rec.flow_key, repr(rec.ts),
                                   _transaction(rec)),
            "kind": "event", "category": ["network"], "type": ["protocol", "info"],
            "dataset": DATASETS[rec.kind], "module": "watchkeeper",
        },
        "observer": {"name": observer, "type": "sensor"},
        "source": {"ip": rec.orig_ip, "port": rec.orig_port},
        "destination": {"ip": rec.resp_ip, "port": rec.resp_port},
        "network": {
            "transport": transport_name(rec.proto),
            "protocol": "ssl" if rec.kind == "tls" else rec.kind,
            "community_id": community_id(rec.proto, rec.orig_ip, rec.resp_ip, rec.orig_port,
                                         rec.resp_port),
            "direction": networks.direction(rec.orig_ip, rec.resp_ip),
        },
        "related": {"ip": sorted({rec.orig_ip, rec.resp_ip})},
    }
    if rec.answered_at is not None:
        doc["event"]["duration"] = max(0, round((rec.answered_at - rec.ts) * 1e9))
    {"dns": _dns, "http": _http, "tls": _tls, "dce_rpc": _dce_rpc,
     "kerberos": _kerberos}[rec.kind](doc, rec)
    if site:
        doc["labels"] = {"site": site}
    return doc


def arp_document(rec: AppRecord, observer: str, networks: InternalNetworks,
                 site: str | None = None) -> dict:
    """A broadcast ARP request (collectors/capture/arp.py): `source` asked who has
    `destination.ip`. No ports, no flow, no Community ID (it hashes IP flows only)."""
    mac = rec.request.sender_mac
    doc = {
        "@timestamp": timeutil.format(rec.ts),
        "event": {
            "id": schema.stable_id(observer, "arp", rec.orig_ip, mac, rec.resp_ip, repr(rec.ts)),
            "kind": "event", "category": ["network"], "type": ["protocol", "info"],
            "dataset": schema.ARP, "module": "watchkeeper", "action": "arp_request",
        },
        "observer": {"name": observer, "type": "sensor"},
        "source": {"ip": rec.orig_ip, "mac": mac},
        "destination": {"ip": rec.resp_ip},
        "network": {"protocol": "arp", "type": "ipv4",
                    "direction": networks.direction(rec.orig_ip, rec.resp_ip)},
        "related": {"ip": sorted({rec.orig_ip, rec.resp_ip})},
    }
    if site:
        doc["labels"] = {"site": site}
    return doc


def _transaction(rec: AppRecord) -> str:
    message = rec.request or rec.answer
    if rec.kind == "dce_rpc":
        return str(message.call_id)
    return str(getattr(message, "id", "")) if rec.kind == "dns" else ""


def _dns(doc: dict, rec: AppRecord) -> None:
    query, answer = rec.request, rec.answer
    message = query or answer
    netbios = NETBIOS_PORT in (rec.orig_port, rec.resp_port)
    if message.questions:
        name, qtype, qclass = message.questions[0]
        question = {"name": _name(name, netbios), "type": dnswire.qtype_name(qtype),
                    "class": dnswire.qclass_name(qclass)}
    elif answer is not None and answer.answers:   # mDNS announcements: Zeek logs the owner
        question = {"name": _name(answer.answers[0].name, netbios)}
    else:
        question = None
    dns = {
        "id": str(message.id),
        "type": "answer" if answer is not None else "query",
        "op_code": dnswire.opcode_name(message.opcode),
        "question": question,
        "header_flags": [f.upper() for f in ("aa", "tc", "rd", "ra")
                         if getattr(answer or query, f)],
    }
    if answer is not None:
        dns["response_code"] = dnswire.rcode_name(answer.rcode)
        # Records Zeek decodes but does not log (OPT, HINFO, ...) have no data text.
        dns["answers"] = [{"name": _name(a.name, netbios), "type": dnswire.qtype_name(a.rtype),
                           "ttl": a.ttl, "data": a.data} for a in answer.answers if a.data]
        dns["resolved_ip"] = [a.data for a in answer.answers if schema.is_ip(a.data)]
    doc["dns"] = {k: v for k, v in dns.items() if v not in (None, [], "")}
    if rec.forwarded_for:
        doc["watchkeeper"] = {"dns": {"forwarded_for": rec.forwarded_for}}
        doc["related"]["ip"] = sorted({*doc["related"]["ip"], rec.forwarded_for})


def _name(name: str, netbios: bool) -> str:
    """Zeek's spelling: lower case, NetBIOS first-level encoding decoded on port 137."""
    if netbios:
        label, _, rest = name.partition(".")
        if len(label) == 32 and all("A" <= c <= "P" for c in label.upper()):
            raw = bytes(((ord(a) - 65) << 4) | (ord(b) - 65)
                        for a, b in zip(label.upper()[::2], label.upper()[1::2]))
            decoded = raw[:15].decode("latin-1").rstrip(" \x00")
            return decoded + ("." + rest if rest else "")
        return name
    return name.lower()


def _http(doc: dict, rec: AppRecord) -> None:
    request, response = rec.request, rec.answer
    http: dict = {}
    if request is not None:
        http["version"] = request.version
        http["request"] = {"method": request.method}
        if request.referrer:
            http["request"]["referrer"] = request.referrer
        path, _, query = request.uri.partition("?")
        url = {"original": request.uri, "path": path}
        if query:
            url["query"] = query
        if request.host:
            url["domain"] = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") \
                else request.host
            if path.startswith("/"):
                url["full"] = f"http://{request.host}{request.uri}"
        doc["url"] = url
        if request.user_agent:
            doc["user_agent"] = {"original": request.user_agent}
    if response is not None:
        http.setdefault("version", response.version)
        http["response"] = {"status_code": response.status_code}
        doc["event"]["outcome"] = "failure" if response.status_code >= 400 else "success"
    doc["http"] = http


def _tls(doc: dict, rec: AppRecord) -> None:
    hello, server = rec.request, rec.answer
    tls: dict = {}
    if hello is not None:
        client: dict = {}
        if hello.server_name:
            client["server_name"] = hello.server_name
        offered = [tlshello.version_text(v)[1] for v in hello.supported_versions
                   or [hello.client_version]]
        client["supported_versions"] = offered
        if hello.alpn:
            client["alpn"] = hello.alpn
        tls["client"] = client
    if server is not None:
        tls["version_protocol"], tls["version"] = tlshello.version_text(server.version)
        tls["established"] = True
    doc["tls"] = tls


def _dce_rpc(doc: dict, rec: AppRecord) -> None:
    call = rec.request
    doc["dce_rpc"] = {"endpoint": call.endpoint, "operation": call.operation}
    doc["event"]["action"] = f"{call.endpoint}.{call.operation}"
    if call.over_smb:
        doc["network"]["application"] = "smb"


def _kerberos(doc: dict, rec: AppRecord) -> None:
    """An AS exchange is a login try: ECS authentication fields (user.name lower-cased, as
    Windows account names are case-insensitive), the Kerberos detail as Zeek's kerberos.log."""
    request, answer = rec.request, rec.answer
    client = (request and request.client) or (answer and answer.client)
    realm = (request and request.realm) or (answer and answer.realm)
    service = (request and request.service) or (answer and answer.service)
    doc["network"]["protocol"] = "krb"
    doc["event"].update({"category": ["authentication"], "type": ["info"],
                         "action": "kerberos_as",
                         "outcome": kerberos.login_outcome(request, answer)})
    if client:
        user = client.split("/")[0].lower()         # the account: the principal's first name
        doc["user"] = {"name": user}
        doc["related"]["user"] = [user]
    detail = {"request_type": "AS", "client": f"{client}/{realm}" if client and realm else client,
              "service": service}
    if answer is not None:
        detail["success"] = answer.msg_type == kerberos.AS_REP
        if answer.error_code is not None:
            detail["error_code"] = answer.error_code
            detail["error_msg"] = kerberos.ERRORS.get(answer.error_code,
                                                      f"KRB_ERROR_{answer.error_code}")
    doc["watchkeeper"] = {"kerberos": {k: v for k, v in detail.items() if v is not None}}
