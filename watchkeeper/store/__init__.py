"""Document store: one interface, SQLite (embedded) and Elasticsearch implementations (§5)."""
from watchkeeper.store.base import (KINDS, Bucket, Page, Query, Store, StoreError,
                                    StoreUnavailable, open_store)

__all__ = ["KINDS", "Bucket", "Page", "Query", "Store", "StoreError", "StoreUnavailable",
           "open_store"]
