"""Flow documents straight from the compiled table's record rows (`layout.RECORD`): the same
dicts as `watchkeeper.documents.flow_document(to_records(rows))`, which stays the reference,
without a `FlowRecord` per flow.

What is done for the whole batch at once: times (ISO strings from numpy datetimes), durations,
totals, address text (cached per address), the community id's ordering; what stays per flow:
the three hashes (uid, event id, community id) and the dict itself.
"""
from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np

from watchkeeper import schema
from watchkeeper.documents import (PORT_PROTOCOLS, PROTO_NAMES, community_id,
                                   community_id_packed)
from watchkeeper.networks import InternalNetworks

from collectors.capture.flows.compiled.layout import CONN_STATES, HISTORY
from collectors.capture.flows.flow import SERVICES, flow_uid, ip_text

def iso_times(epoch: np.ndarray) -> list[str]:
    """Epoch seconds -> ISO-8601 UTC with microseconds, rounded as `timeutil.format` does
    (half to even on the fraction, as Python's round)."""
    frac, whole = np.modf(epoch)
    micros = np.round(frac * 1e6).astype(np.int64) + whole.astype(np.int64) * 1_000_000
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [t + "Z" for t in text.tolist()]


def flow_documents(rows: np.ndarray, app: dict[int, dict], observer: str,
                   networks: InternalNetworks, site: str | None = None) -> Iterator[dict]:
    # A generator: a document handed on at once dies young, which keeps Python's
    # garbage collector cheap (a batch of documents held in a list cost ~25 % more).
    n = len(rows)
    if not n:
        return
    start, last = rows["start"], rows["last"]
    starts, ends = iso_times(start), iso_times(last)
    duration = np.maximum(0, np.round((last - start) * 1e9)).astype(np.int64).tolist()
    keyhex = rows["key"].tobytes().hex()
    ips, hist = rows["ip"].tobytes(), rows["history"].tobytes()
    proto, v6, hlen = rows["proto"].tolist(), rows["v6"].tolist(), rows["hlen"].tolist()
    state, final = rows["state"].tolist(), rows["final"].tolist()
    tunnel, evicted = rows["tunnel"].tolist(), rows["evicted"].tolist()
    port, pkts, ipb, pay = (rows[c].tolist() for c in ("port", "pkts", "ipb", "bytes"))
    start_l = start.tolist()
    # the event id is schema.stable_id(observer, uid), inlined (its generator costs ~1 us)
    observer_text = "" if observer is None else str(observer)
    blake2b = hashlib.blake2b
    for j in range(n):
        pr, (op, rp), (opk, rpk), (oib, rib), (ob, rb) = proto[j], port[j], pkts[j], ipb[j], \
            pay[j]
        raw_o, raw_r = ips[32 * j:32 * j + 16], ips[32 * j + 16:32 * j + 32]
        src, dst = ip_text(raw_o, v6[j]), ip_text(raw_r, v6[j])
        uid = flow_uid(keyhex[80 * j:80 * j + 80], start_l[j])
        if pr in PORT_PROTOCOLS:
            cid = community_id_packed(pr, raw_o, raw_r, op, rp) if v6[j] else \
                community_id_packed(pr, raw_o[12:], raw_r[12:], op, rp)
        else:
            cid = community_id(pr, src, dst, op, rp)
        is_final = bool(final[j])
        flow = {"uid": uid, "conn_state": CONN_STATES[state[j]],
                "history": hist[HISTORY * j:HISTORY * j + hlen[j]].decode(),
                "orig_bytes": ob, "resp_bytes": rb, "orig_ip_bytes": oib,
                "resp_ip_bytes": rib, "final": is_final}
        hint = app.get(j)
        if tunnel[j]:
            flow["tunnelled"] = True
        if evicted[j]:
            flow["evicted"] = True
        if hint:
            for (ip, p), banner in hint.get("banners", {}).items():
                side = "client" if (ip, p) == (raw_o, op) else "server"
                flow[f"ssh_{side}"] = banner
        doc = {
            "@timestamp": starts[j],
            "event": {
                "id": blake2b(f"{observer_text}\x1f{uid}".encode(), digest_size=16).hexdigest(),
                "kind": "event",
                "category": ["network"],
                "type": ["connection", "end" if is_final else "info"],
                "dataset": schema.FLOW,
                "module": "watchkeeper",
                "start": starts[j],
                "end": ends[j],
                "duration": duration[j],
            },
            "observer": {"name": observer, "type": "sensor"},
            "source": {"ip": src, "port": op, "bytes": oib, "packets": opk},
            "destination": {"ip": dst, "port": rp, "bytes": rib, "packets": rpk},
            "network": {
                "transport": PROTO_NAMES.get(pr, str(pr)),
                "community_id": cid,
                "bytes": oib + rib,
                "packets": opk + rpk,
                "direction": networks.direction(src, dst),
            },
            "related": {"ip": sorted({src, dst})},
            "watchkeeper": {"flow": flow},
        }
        if ob + rb > 0 and pr in (6, 17):
            service = (hint or {}).get("service") or SERVICES.get((pr, rp))
            if service:
                doc["network"]["protocol"] = service
        if site:
            doc["labels"] = {"site": site}
        yield doc
