"""Walk each flow's packets of a batch (grouped by reference.ReferenceFlowTable.process).

New flows whose only packet in the batch is a bare SYN or a UDP datagram go to the lite
store in one numpy step (see lite.py); the rest run packet by packet through the
reference path. A packet on a key held as a lite flow first replays the stored packet.
"""
from __future__ import annotations

import numpy as np

from collectors.capture.decoding import packets as D
from collectors.capture.flows import lite as L


def process_groups(table, q, keys, inverse, order) -> None:
    inv_sorted = inverse[order]
    bounds = np.flatnonzero(np.diff(inv_sorted)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    first = order[starts]
    raw = keys[first].tobytes()
    key_list = [raw[k:k + 40] for k in range(0, len(raw), 40)]
    to_lite = _lite_groups(table, q, first, ends - starts, key_list)
    if to_lite.any():
        rows = first[to_lite]
        table.lite.add(D.take(q, rows), keys[rows],
                       [key_list[g] for g in np.flatnonzero(to_lite).tolist()])
    lite = table.lite
    order_l = order.tolist()
    starts_l, ends_l = starts.tolist(), ends.tolist()
    for g in np.flatnonzero(~to_lite).tolist():
        key = key_list[g]
        if key in lite.index:               # second packet of a lite flow: materialise
            table.packet(key, *lite.pop(key))
        flow = None
        for j in range(starts_l[g], ends_l[g]):
            flow = table.packet(key, q, order_l[j])
        table.schedule(flow)


def _lite_groups(table, q, first, sizes, key_list) -> np.ndarray:
    """Groups that become lite flows: one eligible packet, a key not yet in the table,
    and room in the table for all of them (else the reference path evicts as usual)."""
    cand = (sizes == 1) & L.eligible(q)[first]
    if not cand.any():
        return cand
    flows, index = table.flows, table.lite.index
    idx = np.flatnonzero(cand)
    known = [g for g in idx.tolist() if key_list[g] in flows or key_list[g] in index]
    cand[known] = False
    n = int(cand.sum())
    if len(flows) + len(table.lite) + n > table.config.max_flows:
        cand[:] = False
    return cand
