"""Elasticsearch store: daily event indices, one index per other kind, bulk upserts by id."""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgspec
from elasticsearch import (ApiError, ConflictError, Elasticsearch, JsonSerializer, NotFoundError,
                           TransportError)
from elasticsearch.helpers import BulkIndexError, bulk

from watchkeeper import timeutil
from watchkeeper.incidents import keep_newer_people_fields
from watchkeeper.store import mappings
from watchkeeper.store import raw as raw_docs
from watchkeeper.store.base import (ANALYST_FIELDS, RawRejected, Store, StoreError,
                                    StoreUnavailable, check_deletable, check_kind,
                                    stamp_ingested)
from watchkeeper.store.elastic_alerts import ElasticAlertChanges
from watchkeeper.store.elastic_reads import ElasticReads
from watchkeeper.store.legacy import upgraded

CLIENT_MAJOR = 8
log = logging.getLogger("watchkeeper.store")
_LEASE_ID = "audit-writer-lease"
_LEASE_S = 30.0          # a holder that died frees the audit trail after this long
_LEASE_WAIT_S = 120.0
_CAS_RETRIES = 20        # compare-and-set rounds before a write gives up (StoreError)


class _FastJson(JsonSerializer):
    """msgspec instead of the stdlib json: bulk encoding was a third of the indexer's time."""

    def json_dumps(self, data):
        try:
            return msgspec.json.encode(data)
        except TypeError:
            return super().json_dumps(data)   # exotic types: the client's own fallback

    def json_loads(self, data):
        return msgspec.json.decode(data)


class ElasticStore(ElasticAlertChanges, ElasticReads, Store):
    def __init__(self, url: str, prefix: str = mappings.PREFIX, replicas: int = 0):
        self.url = url
        self.prefix = prefix    # tests give each run its own; production keeps the default
        self.replicas = replicas
        self._events = f"{prefix}-events-"
        self.es = Elasticsearch(url, request_timeout=60, retry_on_timeout=True, max_retries=3,
                                serializer=_FastJson())
        self._check_server()
        self.ensure_schema()

    @classmethod
    def from_url(cls, url: str) -> ElasticStore:
        """`?prefix=NAME` picks the index prefix (default `watchkeeper`), `?replicas=N` the
        replica count of new indices (default 0: a single node); neither is sent to ES."""
        parts = urlsplit(url)
        options = parse_qs(parts.query)
        prefix = options.get("prefix", [mappings.PREFIX])[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", prefix):
            raise ValueError(f"store URL prefix {prefix!r}: lowercase letters, digits, - and _")
        replicas = options.get("replicas", ["0"])[0]
        if not replicas.isdigit() or int(replicas) > 10:
            raise ValueError(f"store URL replicas {replicas!r}: a whole number from 0 to 10")
        return cls(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), prefix=prefix,
                   replicas=int(replicas))

    def _check_server(self) -> None:
        try:
            # GET / is not served by the integ-test distribution; the node info is.
            nodes = self.es.nodes.info(node_id="_local", metric="_none")["nodes"]
            version = next(iter(nodes.values()))["version"]
        except (TransportError, ApiError) as exc:
            raise StoreUnavailable(
                f"cannot reach Elasticsearch at {self.url}: start it (deploy/local/services "
                f"start) or point --store / WATCHKEEPER_STORE at a running node ({exc})") from None
        if int(version.split(".")[0]) != CLIENT_MAJOR:
            raise StoreUnavailable(f"Elasticsearch at {self.url} is {version}; this build "
                                   f"speaks {CLIENT_MAJOR}.x (client major must match)")

    def ensure_schema(self) -> None:
        self.es.cluster.put_component_template(name=f"{self.prefix}-ecs",
                                               **mappings.component_template())
        for name, body in mappings.index_templates(self.prefix, self.replicas).items():
            self.es.indices.put_index_template(name=name, **body)
        self._map_new_alert_fields()
        for kind in ("audit", "identity", "state"):
            # Made now, not by the first write: concurrent first appends to the audit chain
            # would otherwise search an index whose shard is still starting (503).
            if not self.es.indices.exists(index=self.index_for(kind)):
                try:
                    self.es.indices.create(index=self.index_for(kind))
                except ApiError as exc:
                    if "resource_already_exists" not in str(exc):
                        raise

    def _map_new_alert_fields(self) -> None:
        """Templates only shape new indices: an alerts index made by an older version gets
        the fields added since (triage) mapped now, before a value maps them dynamically."""
        index = self.index_for("alerts")
        if not self.es.indices.exists(index=index):
            return
        try:
            self.es.indices.put_mapping(index=index,
                                        properties={"watchkeeper": mappings.WATCHKEEPER})
        except ApiError as exc:   # a field already mapped otherwise: say which, keep going
            log.warning("could not add the triage fields to the mapping of %s (filters on "
                        "them may not work until it is reindexed): %s", index, exc)

    def index_for(self, kind: str, doc: dict | None = None) -> str:
        """Events go to the daily index of their event time; other kinds to one index each."""
        if kind == "events":
            if doc is None:
                return self._events + "*"
            return self._events + timeutil.day(timeutil.parse(doc["@timestamp"]))
        return f"{self.prefix}-{kind}"

    # -- writes -------------------------------------------------------------------------------
    def bulk_upsert(self, kind: str, docs: list[dict]) -> int:
        check_kind(kind)
        if not docs:
            return 0
        docs = stamp_ingested(kind, docs)
        if kind == "incidents":
            return self._upsert_keeping_people_fields(kind, docs)
        actions = [self._action(kind, doc) for doc in docs]
        try:
            written, _ = bulk(self.es, actions, chunk_size=2000, max_chunk_bytes=50 * 1024 * 1024,
                              refresh=False, raise_on_error=True, max_retries=3)
        except BulkIndexError as exc:
            first = exc.errors[0] if exc.errors else {}
            raise StoreError(f"{len(exc.errors)} of {len(docs)} documents rejected: {first}") from None
        except (TransportError, ApiError) as exc:   # down, restarting (503), blocked (429)
            raise StoreError(f"bulk write to {self.url} failed: {exc}") from None
        return written

    def put_raw(self, kind: str, docs: list[raw_docs.RawDoc]) -> int:
        raw_docs.check_raw_kind(kind)
        if not docs:
            return 0
        single = None if kind == "events" else self.index_for(kind)
        body = raw_docs.bulk_body(docs, lambda d: single or self._events + raw_docs.day_of(
            d.timestamp))
        try:
            answer = self.es.bulk(operations=body, refresh=False,
                                  filter_path="errors,items.*.error,items.*.status,items.*._id")
        except (TransportError, ApiError) as exc:   # down, restarting (503), blocked (429)
            raise StoreError(f"bulk write to {self.url} failed: {exc}") from None
        failed = raw_docs.bulk_failures(answer.body)
        busy = [f for f in failed if f.get("status", 500) == 429 or f.get("status", 500) >= 500]
        if busy:      # the caller retries the whole batch: writes by id are idempotent
            raise StoreError(f"{len(busy)} of {len(docs)} documents not written: {busy[0]}")
        if failed:    # refused for their content: the caller checks them the slow way
            raise RawRejected([f["_id"] for f in failed], failed[0])
        return len(docs)

    def _action(self, kind: str, doc: dict) -> dict:
        action = {"_index": self.index_for(kind, doc), "_id": doc["event"]["id"]}
        if kind != "alerts":
            return {**action, "_op_type": "index", "_source": doc}
        doc = upgraded(doc)
        # Partial update keeps what the analyst set; a new alert is inserted whole.
        partial = {**doc, "watchkeeper": {**doc["watchkeeper"], "alert": {
            k: v for k, v in doc["watchkeeper"]["alert"].items() if k not in ANALYST_FIELDS}}}
        return {**action, "_op_type": "update", "doc": partial, "upsert": doc,
                "retry_on_conflict": 3}

    def _upsert_keeping_people_fields(self, kind: str, docs: list[dict]) -> int:
        """Read, merge (keep_newer_people_fields), write only if nobody wrote in between
        (if_seq_no); a conflicting document is read and merged again."""
        index = self.index_for(kind)
        pending = {d["event"]["id"]: d for d in docs}
        for _ in range(_CAS_RETRIES):
            actions = []
            for hit in self._mget(index, list(pending)):
                doc = pending[hit["_id"]]
                if not hit.get("found"):
                    actions.append({"_op_type": "create", "_index": index, "_id": hit["_id"],
                                    "_source": doc})
                    continue
                actions.append({"_op_type": "index", "_index": index, "_id": hit["_id"],
                                "_source": keep_newer_people_fields(hit["_source"], doc),
                                "if_seq_no": hit["_seq_no"],
                                "if_primary_term": hit["_primary_term"]})
            try:
                _, errors = bulk(self.es, actions, refresh=False, raise_on_error=False,
                                 max_retries=3)
            except (TransportError, ApiError) as exc:
                raise StoreError(f"bulk write to {self.url} failed: {exc}") from None
            failed = [next(iter(e.values())) for e in errors]
            refused = [f for f in failed if f.get("status") != 409]
            if refused:
                raise StoreError(f"{len(refused)} of {len(docs)} documents rejected: "
                                 f"{refused[0]}")
            pending = {f["_id"]: pending[f["_id"]] for f in failed}
            if not pending:
                return len(docs)
        raise StoreError(f"{len(pending)} {kind} kept changing while being written; retry")

    def _mget(self, index: str, ids: list[str]) -> list[dict]:
        try:
            return self.es.mget(index=index, ids=ids)["docs"]
        except NotFoundError:                      # the index does not exist yet
            return [{"_id": i, "found": False} for i in ids]
        except (TransportError, ApiError) as exc:
            raise StoreError(f"read from {self.url} failed: {exc}") from None

    def modify(self, kind: str, doc_id: str, change: Callable[[dict], dict]) -> dict:
        check_kind(kind)
        if kind == "events":
            raise ValueError("events are not modified in place")
        index = self.index_for(kind)
        for _ in range(_CAS_RETRIES):
            try:
                got = self.es.get(index=index, id=doc_id)
            except NotFoundError:
                raise KeyError(doc_id) from None
            doc = change(got["_source"])
            try:
                self.es.index(index=index, id=doc_id, document=doc, refresh=True,
                              if_seq_no=got["_seq_no"], if_primary_term=got["_primary_term"])
                return doc
            except ConflictError:
                continue                           # someone wrote in between: read again
        raise StoreError(f"{kind} {doc_id} kept changing while being written; retry")

    def insert_new(self, kind: str, doc: dict) -> bool:
        check_kind(kind)
        try:
            # refresh=true: the small audit index is refreshed at once (wait_for would wait
            # up to the 1 s refresh interval on every login and every change).
            self.es.create(index=self.index_for(kind, doc), id=doc["event"]["id"], document=doc,
                           refresh=True)
        except ConflictError:
            return False
        except TransportError as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} did not answer: {exc}") from None
        except ApiError as exc:
            raise StoreError(f"Elasticsearch refused a {kind} document: {exc}") from None
        return True

    def insert_new_many(self, kind: str, docs: list[dict], ordered: bool = False) -> list[bool]:
        """One bulk of `create`s (unordered), or creates one after another without a refresh
        each (ordered: a bulk's items are not atomic, so a later one could land after an
        earlier one lost its race); one refresh at the end either way."""
        check_kind(kind)
        if not docs:
            return []
        try:
            if ordered:
                inserted = self._create_in_order(kind, docs)
            else:
                inserted = self._create_bulk(kind, docs)
        except TransportError as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} did not answer: {exc}") from None
        except ApiError as exc:
            raise StoreError(f"Elasticsearch refused a {kind} document: {exc}") from None
        return inserted

    def _create_in_order(self, kind: str, docs: list[dict]) -> list[bool]:
        """The first alone (the only one a writer holding `audit_lease` can lose), then the
        rest in one bulk; flags up to the first that was not inserted."""
        try:
            self.es.create(index=self.index_for(kind, docs[0]), id=docs[0]["event"]["id"],
                           document=docs[0], refresh=len(docs) == 1)
        except ConflictError:
            return [False] * len(docs)
        rest = self._create_bulk(kind, docs[1:]) if len(docs) > 1 else []
        inserted = [True]
        for made in rest:
            inserted.append(made and inserted[-1])
        if inserted.count(True) != sum(rest) + 1:
            raise StoreError(f"{kind}: an ordered insert lost a record in the middle "
                             "(written without the audit lease?)")
        return inserted

    @contextmanager
    def audit_lease(self) -> Iterator[None]:
        """One writer of the audit chain at a time across processes: a lease document
        created in the `state` index (taken over once it expires: its holder died), so a
        batch of chained records goes in one bulk without another writer taking a number
        in the middle of it."""
        index = self.index_for("state")
        lease = {"@timestamp": timeutil.format(time.time()),
                 "event": {"id": _LEASE_ID, "kind": "state", "dataset": "watchkeeper.lease"},
                 "watchkeeper": {"state": {"holder": uuid.uuid4().hex}}}   # not indexed
        deadline = time.monotonic() + _LEASE_WAIT_S
        while True:
            lease["watchkeeper"]["state"]["until"] = time.time() + _LEASE_S
            try:
                made = self.es.create(index=index, id=_LEASE_ID, document=lease,
                                      refresh=False)
                break
            except ConflictError:
                self._expire_lease(index)
            except TransportError as exc:
                raise StoreUnavailable(f"Elasticsearch at {self.url} did not answer: {exc}") \
                    from None
            if time.monotonic() > deadline:
                raise StoreError("audit trail: another writer held the lease too long")
            time.sleep(0.002)
        try:
            yield
        finally:
            try:
                self.es.delete(index=index, id=_LEASE_ID, if_seq_no=made["_seq_no"],
                               if_primary_term=made["_primary_term"])
            except (ConflictError, NotFoundError, TransportError):
                pass                  # taken over after expiry, or gone: not ours to free

    def _expire_lease(self, index: str) -> None:
        try:
            got = self.es.get(index=index, id=_LEASE_ID)
            if got["_source"]["watchkeeper"]["state"]["until"] < time.time():
                self.es.delete(index=index, id=_LEASE_ID, if_seq_no=got["_seq_no"],
                               if_primary_term=got["_primary_term"])
        except (ConflictError, NotFoundError):
            pass

    def _create_bulk(self, kind: str, docs: list[dict]) -> list[bool]:
        first = {}                               # a repeated id: the first one is tried
        for position, doc in enumerate(docs):
            first.setdefault(doc["event"]["id"], position)
        actions = [{"_op_type": "create", "_index": self.index_for(kind, doc),
                    "_id": doc["event"]["id"], "_source": doc}
                   for position, doc in enumerate(docs) if first[doc["event"]["id"]] == position]
        _, errors = bulk(self.es, actions, refresh=True, raise_on_error=False, max_retries=3,
                         chunk_size=2000)
        failed = [next(iter(e.values())) for e in errors]
        refused = [f for f in failed if f.get("status") != 409]
        if refused:
            raise StoreError(f"{len(refused)} of {len(docs)} {kind} documents rejected: "
                             f"{refused[0]}")
        exists = {f["_id"] for f in failed}
        return [first[doc["event"]["id"]] == position and doc["event"]["id"] not in exists
                for position, doc in enumerate(docs)]

    def delete_ids(self, kind: str, ids: list[str]) -> int:
        check_deletable(kind)
        found = 0
        for doc_id in dict.fromkeys(ids):
            try:
                self.es.delete(index=self.index_for(kind), id=doc_id, refresh="wait_for")
                found += 1
            except NotFoundError:
                pass
        return found

    def delete_events_before(self, day: str) -> list[str]:
        indices = self.es.indices.get(index=self._events + "*", expand_wildcards="open,closed",
                                      ignore_unavailable=True, allow_no_indices=True)
        old = sorted(name for name in indices if name[len(self._events):] < day)
        for name in old:
            self.es.indices.delete(index=name)   # a whole day at a time: cheap, no delete-by-query
        return [name[len(self._events):] for name in old]

    def refresh(self, kind: str | None = None) -> None:
        index = self.index_for(kind) if kind else f"{self.prefix}-*"
        try:
            self.es.indices.refresh(index=index, ignore_unavailable=True,
                                    allow_no_indices=True)
        except (TransportError, ApiError) as exc:
            raise StoreError(f"refresh of {self.url} failed: {exc}") from None

    def close(self) -> None:
        self.es.close()
