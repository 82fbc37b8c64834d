"""Template cache per (exporter, observation domain, template id) with refresh and expiry.

netflume's TemplateStore already keys templates by exporter and domain and bounds its size
(least recently used evicted). What it lacks, and a collector on UDP needs, is a lifetime:
RFC 7011 §8.4 — a template not refreshed within the timeout is forgotten, so a router that
rebooted with new layouts cannot have its records cut up by the old ones. Resending a
template refreshes it; an IPFIX withdrawal removes it at once.
"""
from __future__ import annotations

import time
from typing import Callable

from netflume import TemplateStore

from collectors.netflow.wire import WITHDRAW_ALL, Withdrawal

DEFAULT_TEMPLATE_TIMEOUT = 1800.0  # seconds; softflowd/Cisco resend every few minutes
MAX_PER_STREAM = 512   # templates per (exporter, domain); real exporters use tens


class ExpiringTemplateStore(TemplateStore):
    def __init__(self, timeout: float = DEFAULT_TEMPLATE_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic, **limits):
        super().__init__(**limits)
        self.timeout = timeout
        self.clock = clock
        self.expired = 0
        self.withdrawn = 0
        self.per_stream_evicted = 0
        self._refreshed: dict[tuple, float] = {}
        # (exporter, domain) -> its template ids, oldest first: evicting a pair must not
        # scan every template, and one pair must not fill the store with 65 536 ids.
        self._streams: dict[tuple, dict[int, None]] = {}

    def put(self, exporter, domain, tid, fields, options=False):
        key = (exporter, domain, tid)
        self._refreshed[key] = self.clock()
        ids = self._streams.setdefault((exporter, domain), {})
        ids.pop(tid, None)
        ids[tid] = None
        while len(ids) > MAX_PER_STREAM:
            oldest = next(iter(ids))
            del ids[oldest]
            self._forget((exporter, domain, oldest))
            self.per_stream_evicted += 1
        changed = super().put(exporter, domain, tid, fields, options)
        if len(self._refreshed) > len(self.templates) * 2 + 64:
            # The parent evicted some (LRU ceiling): drop their stamps too.
            self._refreshed = {k: v for k, v in self._refreshed.items() if k in self.templates}
        return changed

    def get(self, exporter, domain, tid):
        key = (exporter, domain, tid)
        stamp = self._refreshed.get(key)
        if stamp is not None and self.clock() - stamp > self.timeout:
            self._forget(key)
            self.expired += 1
        return super().get(exporter, domain, tid)

    def withdraw(self, exporter, domain, withdrawal: Withdrawal) -> int:
        """Apply one IPFIX withdrawal; returns how many templates it removed."""
        if withdrawal.template_id == WITHDRAW_ALL:
            keys = [k for k, (_f, opts) in self.templates.items()
                    if k[:2] == (exporter, domain) and opts == withdrawal.options]
        else:
            keys = [(exporter, domain, withdrawal.template_id)]
        removed = sum(self._forget(key) for key in keys)
        self.withdrawn += removed
        return removed

    def forget_stream(self, exporter, domain) -> int:
        """Drop every template of one (exporter, domain) pair (its state was evicted)."""
        ids = self._streams.pop((exporter, domain), {})
        return sum(self._forget((exporter, domain, tid)) for tid in ids)

    def _forget(self, key: tuple) -> bool:
        self._refreshed.pop(key, None)
        return self.templates.pop(key, None) is not None
