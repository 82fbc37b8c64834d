"""The audit chain on both backends: appended in order, an edited or a deleted record is found,
records are never replaced, and alert updates land on the chain."""
from __future__ import annotations

import threading

from watchkeeper.store import audit as chain
from watchkeeper.store.base import Query
from watchkeeper.store.sqlite import SqliteStore


def _append(store, n: int) -> list[dict]:
    return [store.append_audit(chain.audit_record("auth.login", f"user{i}", message=f"#{i}"))
            for i in range(n)]


def _delete(store, record_id: str) -> None:
    if isinstance(store, SqliteStore):
        store._db.execute("DELETE FROM audit WHERE id = ?", (record_id,))
    else:
        store.es.delete(index=store.index_for("audit"), id=record_id, refresh=True)


def _race(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_records_chain_in_order(store):
    records = _append(store, 5)
    assert [r["watchkeeper"]["audit"]["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["watchkeeper"]["audit"]["prev_hash"] == chain.GENESIS
    for before, after in zip(records, records[1:]):
        assert after["watchkeeper"]["audit"]["prev_hash"] == before["watchkeeper"]["audit"]["hash"]
    verdict = chain.verify(store)
    assert verdict.ok and verdict.checked == 5
    assert [r["event"]["id"] for r in chain.iter_audit(store)] == [r["event"]["id"] for r in records]


def test_an_edited_record_is_found(store):
    records = _append(store, 4)
    edited = records[2]
    edited["user"]["name"] = "someone-else"
    store.bulk_upsert("audit", [edited])      # bypassing the chain, as a tamperer would
    store.refresh()
    verdict = chain.verify(store)
    assert not verdict.ok and verdict.broken_seq == 3 and verdict.checked == 2
    assert "edited" in verdict.reason and verdict.broken_id == edited["event"]["id"]


def test_a_deleted_record_is_found(store):
    records = _append(store, 4)
    _delete(store, records[1]["event"]["id"])
    verdict = chain.verify(store)
    assert not verdict.ok and verdict.broken_seq == 2 and verdict.checked == 1
    assert "deleted" in verdict.reason


def test_the_last_record_deleted_is_not_found_by_the_chain_alone(store):
    """A chain cannot see its own truncation; the next append then reuses the number and the
    chain still verifies from the new tail. Documented limit (docs/api-access.md)."""
    records = _append(store, 3)
    _delete(store, records[2]["event"]["id"])
    assert chain.verify(store).ok


def test_an_existing_record_is_never_replaced(store):
    first = _append(store, 1)[0]
    assert store.insert_new("audit", {**first, "message": "rewritten"}) is False
    store.refresh()
    assert store.get_by_ids("audit", [first["event"]["id"]])[0]["message"] == "#0"


def test_concurrent_writers_do_not_fork_the_chain(store):
    """Writers with their own chain objects (as the API and the CLI have) racing: a lost race
    retries on the new tail, so the chain stays one line."""
    writers = [chain.AuditChain(store) for _ in range(4)]
    errors = []

    def write(w):
        try:
            for i in range(8):
                w.append(chain.audit_record("x", f"w{i}"))
        except Exception as exc:   # surfaced below: a thread's exception is otherwise lost
            errors.append(exc)
    _race([threading.Thread(target=write, args=(w,)) for w in writers])
    assert errors == []
    verdict = chain.verify(store)
    assert verdict.ok and verdict.checked == 32


def test_alert_updates_are_chained(store):
    from watchkeeper.documents import AlertSpec, alert_document
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="r",
                     rule_name="r", severity=2, message="m", entity="e", first_seen=1.7e9,
                     last_seen=1.7e9 + 1, source_ip="10.0.0.1")
    alert = alert_document(spec, created=1.7e9 + 2)
    store.bulk_upsert("alerts", [alert])
    store.refresh()
    store.update_alert(alert["event"]["id"], {"status": "acknowledged"}, actor="li.wei")
    store.refresh()
    page = store.search("audit", Query(terms={"event.action": ["alert.update"]}))
    assert page.total == 1 and page.items[0]["watchkeeper"]["audit"]["seq"] == 1
    assert chain.verify(store).ok


def test_a_source_that_is_not_an_address_is_left_out(store):
    record = store.append_audit(chain.audit_record("auth.login", "x", source_ip="testclient"))
    assert "source" not in record
    kept = store.append_audit(chain.audit_record("auth.login", "x", source_ip="192.0.2.7"))
    assert kept["source"]["ip"] == "192.0.2.7" and chain.verify(store).ok


def test_batches_and_single_appends_racing_keep_one_chain(store):
    """Batch writers (`append_many`: the playbook worker's group commits, one bulk on
    Elasticsearch under the audit lease) racing single appends from other chain objects:
    no record after a gap, no number twice, every record in."""
    batchers = [chain.AuditChain(store) for _ in range(2)]
    singles = [chain.AuditChain(store) for _ in range(2)]
    errors = []

    def batches(w, name):
        try:
            for b in range(3):
                stored = w.append_many([chain.audit_record("x", f"{name}-{b}-{i}")
                                        for i in range(15)])
                assert [r["user"]["name"] for r in stored] == [f"{name}-{b}-{i}"
                                                               for i in range(15)]
        except Exception as exc:
            errors.append(exc)

    def single(w, name):
        try:
            for i in range(6):
                w.append(chain.audit_record("x", f"{name}-{i}"))
        except Exception as exc:
            errors.append(exc)
    _race([threading.Thread(target=batches, args=(w, f"b{n}")) for n, w in enumerate(batchers)]
          + [threading.Thread(target=single, args=(w, f"s{n}")) for n, w in enumerate(singles)])
    assert errors == []
    verdict = chain.verify(store)
    assert verdict.ok and verdict.checked == 2 * 3 * 15 + 2 * 6
    names = [r["user"]["name"] for r in chain.iter_audit(store)]
    assert len(set(names)) == len(names)
    assert [n for n in names if n.startswith("b0-0-")] == [f"b0-0-{i}" for i in range(15)]


def test_insert_new_many_flags_each_document(store):
    docs = [{"@timestamp": "2026-05-10T12:00:00Z",
             "event": {"id": f"claim-{i}", "kind": "event", "dataset": "watchkeeper.run.step"},
             "watchkeeper": {"run": {"run_id": "r", "attempt": i}}} for i in range(4)]
    assert store.insert_new_many("runs", docs[:2]) == [True, True]
    assert store.insert_new_many("runs", docs) == [False, False, True, True]
    assert store.insert_new_many("runs", [docs[0], docs[0]]) == [False, False]
    assert len(store.get_by_ids("runs", [d["event"]["id"] for d in docs])) == 4
    ordered = [{**d, "event": {**d["event"], "id": f"o-{i}"}} for i, d in enumerate(docs)]
    assert store.insert_new_many("runs", [ordered[0]]) == [True]
    assert store.insert_new_many("runs", ordered, ordered=True) == [False] * 4   # none after it
    assert len(store.get_by_ids("runs", [d["event"]["id"] for d in ordered])) == 1
    assert store.insert_new_many("runs", ordered[1:], ordered=True) == [True] * 3
