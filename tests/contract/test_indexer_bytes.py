"""The indexer's byte path on both stores and both buses: trusted documents stored as the
bytes they came in, by id, in their daily index; a document the store refuses is checked
and dead-lettered instead of blocking the stage; writes in flight commit in order."""
from __future__ import annotations

from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.indexer import Indexer
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher
from watchkeeper.store import Query
from watchkeeper.store.raw import head
from watchkeeper.worker import drain

DAY = 86_400


def _flow(i: int, start: float = 1.7e9) -> dict:
    return flow_document(FlowRecord(uid=f"C{i}", start=start + i, end=start + i + 1, proto=6,
                                    orig_ip=f"10.0.{i % 7}.1", orig_port=1000 + i,
                                    resp_ip="10.0.0.2", resp_port=80, conn_state="SF"),
                         "s", InternalNetworks())


def test_put_raw_stores_the_bytes_by_id_in_their_day(store):
    docs = [_flow(i) for i in range(5)] + [_flow(i, 1.7e9 + 2 * DAY) for i in range(5, 8)]
    raws = [head(codec.encode(d)) for d in docs]
    assert store.put_raw("events", raws) == 8
    assert store.put_raw("events", raws[:3]) == 3          # again: replaced, not added
    store.refresh()
    assert store.search("events", Query(limit=100)).total == 8
    got = store.get_by_ids("events", [d["event"]["id"] for d in docs])
    assert [codec.encode(g) for g in got] == [codec.encode(d) for d in docs]
    assert store.delete_events_before("2023.11.16") == ["2023.11.14"]   # 1.7e9: 14 Nov
    store.refresh()
    assert store.search("events", Query(limit=100)).total == 3


def test_trusted_indexer_never_blocks_on_a_document_the_store_refuses(bus, store, unique):
    names = Names(f"wkbytes{unique}")
    bus.ensure_topics(names.topics)
    indexer = Indexer(bus, store, names, retry_s=0.01)
    producer = bus.producer()
    good = [_flow(i) for i in range(300)]
    odd = {**_flow(999), "source": {"ip": "300.1.1.1"}}   # well-formed, not an address
    for doc in good[:150] + [odd] + good[150:]:
        producer.send(names.events, codec.encode(doc), key=doc["source"]["ip"])
    producer.flush()
    try:
        result = drain(indexer, stall_s=60)
    finally:
        indexer.close()
    store.refresh()
    stored = store.search("events", Query(limit=1000)).total
    refused = store.search("deadletter", Query(limit=10)).total
    # SQLite keeps what a trusted producer sent; Elasticsearch refuses the address, and the
    # indexer dead-letters it (validated the slow way) instead of retrying it for ever.
    assert (stored, refused) in ((301, 0), (300, 1))
    assert result.consumed >= 301 + refused


def test_batched_events_are_stored_one_by_one_and_a_bad_line_alone_is_dead_lettered(
        bus, store, unique):
    """Collectors send events in batches (watchkeeper/batches.py): JSON lines in a message."""
    names = Names(f"wkbatch{unique}")
    bus.ensure_topics(names.topics)
    indexer = Indexer(bus, store, names, retry_s=0.01)
    publisher = EventPublisher(bus.producer(), "test", names, partitions=bus.partitions)
    docs = [_flow(i) for i in range(1000)]
    for doc in docs[:900]:
        publisher.publish(doc)
    publisher.flush()
    lines = [codec.encode(doc) for doc in docs[900:]]
    publisher.producer.send(names.events, b"\n".join(lines[:50] + [b"{not json"] + lines[50:]),
                            key="10.0.0.1")
    publisher.producer.flush()
    try:
        result = drain(indexer, stall_s=60)
    finally:
        indexer.close()
    store.refresh()
    assert result.consumed < 100         # messages: batches, not one per event
    stored = store.get_by_ids("events", [d["event"]["id"] for d in docs])
    assert len(stored) == 1000
    letters = store.search("deadletter", Query(limit=10))
    assert letters.total == 1
    assert letters.items[0]["watchkeeper"]["deadletter"]["raw"] == "{not json"
