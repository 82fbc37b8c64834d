"""Elasticsearch store, analysts' changes to alerts: compare-and-set on the version read
(if_seq_no), batched for bulk triage, each change audited by the caller or here."""
from __future__ import annotations

import time
from collections.abc import Callable

from elasticsearch import ApiError, ConflictError, NotFoundError, TransportError
from elasticsearch.helpers import BulkIndexError, bulk

from watchkeeper.store.base import (AlertConflict, Modified, StoreError, apply_alert_changes,
                                    audit_document, check_alert_changes)

_MODIFY_RETRIES = 10     # another writer changed the alert between our read and our write


class ElasticAlertChanges:
    """Alert changes of ElasticStore (needs `es`, `url`, `index_for`, `get_by_ids`,
    `append_audit`)."""

    def modify_alert(self, alert_id: str, decide: Callable[[dict], dict]) -> tuple[dict, dict]:
        index = self.index_for("alerts")
        for _ in range(_MODIFY_RETRIES):
            try:
                # GET is real-time: the latest version, refreshed or not.
                found = self.es.get(index=index, id=alert_id)
            except NotFoundError:
                raise KeyError(alert_id) from None
            except (TransportError, ApiError) as exc:
                raise StoreError(f"read of alert {alert_id} failed: {exc}") from None
            before = found["_source"]
            changes = decide(before)
            if not changes:
                return before, before
            check_alert_changes(changes)
            try:
                # Only if nobody wrote since our read (optimistic concurrency); else decide again.
                self.es.update(index=index, id=alert_id, doc={"watchkeeper": {"alert": changes}},
                               if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"])
            except ConflictError:
                continue
            except (TransportError, ApiError) as exc:
                raise StoreError(f"update of alert {alert_id} failed: {exc}") from None
            return before, apply_alert_changes(before, changes)
        raise StoreError(f"alert {alert_id}: still changing under us after "
                         f"{_MODIFY_RETRIES} attempts")

    def modify_alerts(self, alert_ids: list[str], decide: Callable[[dict], dict]
                      ) -> list[Modified]:
        """Batched: one real-time mget and one bulk update (each conditional on the version
        read) per 500 alerts; an alert another writer changed meanwhile is redone alone."""
        results: list[Modified] = []
        for start in range(0, len(alert_ids), 500):
            results += self._modify_chunk(alert_ids[start:start + 500], decide)
        return results

    def _modify_chunk(self, alert_ids: list[str], decide: Callable[[dict], dict]
                      ) -> list[Modified]:
        index = self.index_for("alerts")
        try:
            found = self.es.mget(index=index, ids=alert_ids)["docs"]
        except (TransportError, ApiError) as exc:
            raise StoreError(f"read of {len(alert_ids)} alerts failed: {exc}") from None
        results, operations = {}, []
        for hit in found:
            alert_id = hit["_id"]
            if not hit.get("found") or alert_id in results:
                results.setdefault(alert_id, Modified(alert_id, error=KeyError(alert_id)))
                continue
            before = hit["_source"]
            try:
                changes = decide(before)
            except (KeyError, AlertConflict) as exc:
                results[alert_id] = Modified(alert_id, error=exc)
                continue
            if changes:
                check_alert_changes(changes)
                operations += [{"update": {"_index": index, "_id": alert_id,
                                           "if_seq_no": hit["_seq_no"],
                                           "if_primary_term": hit["_primary_term"]}},
                               {"doc": {"watchkeeper": {"alert": changes}}}]
            results[alert_id] = Modified(alert_id, before, apply_alert_changes(before, changes)
                                         if changes else before)
        for alert_id in self._bulk_conflicts(operations):
            try:                                   # changed under us: decide again, alone
                results[alert_id] = Modified(alert_id, *self.modify_alert(alert_id, decide))
            except (KeyError, AlertConflict) as exc:
                results[alert_id] = Modified(alert_id, error=exc)
        return [results[alert_id] for alert_id in alert_ids]

    def _bulk_conflicts(self, operations: list[dict]) -> list[str]:
        """Run conditional bulk updates; the ids refused for a version conflict."""
        if not operations:
            return []
        try:
            answer = self.es.bulk(operations=operations)
        except (TransportError, ApiError) as exc:
            raise StoreError(f"bulk update of alerts failed: {exc}") from None
        conflicts = []
        for item in answer["items"]:
            result = item["update"]
            if result.get("status") == 409:
                conflicts.append(result["_id"])
            elif "error" in result:
                raise StoreError(f"alert {result['_id']} not updated: {result['error']}")
        return conflicts

    def update_alerts(self, alert_ids: list[str], changes: dict, actor: str,
                      comment: str = "") -> int:
        """One bulk of partial updates and one refresh per 1000 alerts (update_alert waits
        for a refresh each: ~1 s an alert), then an audit record per alert."""
        check_alert_changes(changes)
        wanted, changed = list(dict.fromkeys(alert_ids)), 0
        for start in range(0, len(wanted), 1000):
            found = self.get_by_ids("alerts", wanted[start:start + 1000])
            actions = [{"_op_type": "update", "_index": self.index_for("alerts"),
                        "_id": doc["event"]["id"], "doc": {"watchkeeper": {"alert": changes}},
                        "retry_on_conflict": 3} for doc in found]
            try:
                bulk(self.es, actions, refresh=True, raise_on_error=True, max_retries=3)
            except BulkIndexError as exc:
                raise StoreError(f"{len(exc.errors)} alert updates rejected: "
                                 f"{exc.errors[0] if exc.errors else ''}") from None
            except (TransportError, ApiError) as exc:
                raise StoreError(f"bulk update on {self.url} failed: {exc}") from None
            now = time.time()
            for doc in found:
                info = doc["watchkeeper"]["alert"]
                before = {k: info.get(k) for k in changes}
                self.append_audit(audit_document(doc["event"]["id"], before, changes, actor,
                                                 comment, now))
            changed += len(found)
        return changed
