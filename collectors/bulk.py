"""Walk each flow's packets of a batch (grouped by flowtable.FlowTable.process)."""
from __future__ import annotations

import numpy as np


def process_groups(table, q, keys, inverse, order) -> None:
    inv_sorted = inverse[order]
    bounds = np.flatnonzero(np.diff(inv_sorted)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(order)]]).tolist()
    order_l = order.tolist()
    for s, e in zip(starts, ends):
        key = keys[order_l[s]].tobytes()
        flow = None
        for j in range(s, e):
            flow = table.packet(key, q, order_l[j])
        table.schedule(flow)
