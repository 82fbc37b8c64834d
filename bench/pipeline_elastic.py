"""Elasticsearch stores for bench/pipeline.py: one per measured run, deleted afterwards."""
from __future__ import annotations

import sys

from watchkeeper.store import open_store


class Elastic:
    """One ES store per measured run, under its own prefix; deletes what it made."""

    def __init__(self, url: str, run_id: str):
        self.url, self.run_id, self.stores = url, run_id, []

    def open(self, label: str):
        store = open_store(f"{self.url}?prefix=wkbench-{self.run_id}-{label}")
        self.stores.append(store)
        return store

    @staticmethod
    def count(store, kind: str) -> int:
        store.refresh()
        index = store.index_for(kind)
        return store.es.count(index=index, ignore_unavailable=True,
                              allow_no_indices=True)["count"]

    def cleanup(self) -> list[str]:
        deleted = []
        for store in self.stores:
            es, prefix = store.es, store.prefix
            try:
                # Explicit names: ES refuses wildcard deletes (action.destructive_requires_name).
                for name in es.indices.get(index=f"{prefix}-*", expand_wildcards="open,closed",
                                           ignore_unavailable=True, allow_no_indices=True):
                    es.indices.delete(index=name)
                    deleted.append(name)
                for tpl in es.indices.get_index_template(name=f"{prefix}-*")["index_templates"]:
                    es.indices.delete_index_template(name=tpl["name"])
                es.cluster.delete_component_template(name=f"{prefix}-ecs")
            except Exception as exc:   # noqa: BLE001 - report, keep cleaning the others
                print(f"cleanup of {prefix}-*: {exc}", file=sys.stderr)
            store.close()
        return deleted
